"""`import adyn` stays light: the tools, the test helpers and telemetry load only when used."""

from __future__ import annotations

import subprocess
import sys

import adyn

HEAVY = ("click", "rich", "opentelemetry", "adyn.testing", "adyn.cli", "moto", "hypothesis")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def _loaded(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


def test_import_adyn_loads_no_tooling() -> None:
    modules = _modules_after("import adyn")
    assert [name for name in HEAVY if _loaded(modules, name)] == []


def test_every_public_name_still_imports() -> None:
    modules = _modules_after(f"from adyn import {', '.join(adyn.__all__)}")
    assert "adyn.engine" in modules
    assert [
        name for name in ("click", "rich", "adyn.testing", "moto") if _loaded(modules, name)
    ] == []

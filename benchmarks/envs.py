"""Virtualenvs for contenders that cannot share the runner's environment.

dynamoxy needs Python 3.12; aioboto3 pins aiobotocore and botocore releases older than the ones
adyn is measured with. Each gets a virtualenv of its own, built from a requirements file beside
this module and cached under `.cache/bench-envs/` (git-ignored), keyed by a digest of that file
and of the interpreter: a second run reuses it, and editing the file builds a new one. The
virtualenv holds the peer and orjson (the worker protocol); the benchmark package itself comes
from the checkout through PYTHONPATH. Built with `uv` when it is on PATH, else with
`python -m venv` and pip.

Python 3.12 is looked for in `--python312` (or `$BENCH_PYTHON312`), then `python3.12` on PATH,
then pyenv's `~/.pyenv/versions/3.12.*`. Where none is found the contender shows "n/a" with the
reason, and the runner says so on stderr.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
CACHE = HERE.parent / ".cache" / "bench-envs"


class Unavailable(Exception):
    """The environment cannot be had here; the message says why."""


@dataclass(frozen=True)
class Env:
    key: str
    python: str  # "3.12": that interpreter; "": the runner's own
    requirements: str  # a file beside this module
    why: str


ENVS: dict[str, Env] = {
    "py312": Env("py312", "3.12", "requirements-py312.txt", "dynamoxy needs Python 3.12"),
    "aioboto3": Env(
        "aioboto3",
        "",
        "requirements-aioboto3.txt",
        "aioboto3 pins older aiobotocore and botocore than the main environment's",
    ),
}


def _version_of(python: str) -> str | None:
    try:
        done = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def find_python(version: str, override: str | None = None) -> str:
    """An interpreter of `version` ("3.12"), or Unavailable naming where it looked."""
    variable = f"BENCH_PYTHON{version.replace('.', '')}"
    candidates = [override, os.environ.get(variable), shutil.which(f"python{version}")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [
        str(path / "bin" / f"python{version}")
        for path in sorted(pyenv.glob(f"{version}.*"), reverse=True)
    ]
    for candidate in candidates:
        if candidate:
            found = _version_of(candidate)
            if found is not None and found.startswith(version + "."):
                return candidate
    raise Unavailable(
        f"python{version} not found (looked at --python{version.replace('.', '')}, "
        f"${variable}, PATH and {pyenv}/{version}.*)"
    )


def _run(args: list[str], log: IO[str]) -> None:
    log.flush()
    done = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, timeout=600)
    if done.returncode != 0:
        raise Unavailable(f"{' '.join(args[:3])} ... failed (exit {done.returncode}); see --log")


def ensure(key: str, log: IO[str], python312: str | None = None) -> str:
    """The interpreter of environment `key`, building its virtualenv first if needed."""
    env = ENVS[key]
    base = find_python(env.python, python312) if env.python else sys.executable
    requirements = HERE / env.requirements
    digest = hashlib.sha256(
        requirements.read_bytes() + f"\0{base}\0{_version_of(base)}".encode()
    ).hexdigest()[:12]
    target = CACHE / f"{env.key}-{digest}"
    python = target / "bin" / "python"
    ready = target / ".ready"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{env.key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once: one builds, the other waits
        if ready.exists() and python.exists():
            return str(python)
        shutil.rmtree(target, ignore_errors=True)
        print(f"  building the {env.key} virtualenv ({env.why}) in {target}", file=sys.stderr)
        uv = shutil.which("uv")
        if uv:
            _run([uv, "venv", "--quiet", "--python", base, str(target)], log)
            _run([uv, "pip", "install", "--python", str(python), "-r", str(requirements)], log)
        else:
            _run([base, "-m", "venv", str(target)], log)
            _run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], log)
        ready.write_text(f"{base}\n")
    return str(python)

"""Type-check the ```python blocks of docs/ and README.md, as a user's checker would see them.

    python tests/typing/check_docs.py mypy [ARGS...]      # mypy --strict, the project's config
    python tests/typing/check_docs.py pyright [ARGS...]
    python tests/typing/check_docs.py write OUTDIR        # only write the modules

The blocks are written to a temporary folder, one module per page (`docs/queries.md` ->
`docs_queries.py`): the blocks of a page run in order in one namespace (tests/test_docs.py), so a
later block uses the names of an earlier one. Every line of a block keeps its line number, and
the checker's report names the page: `docs/queries.md:42: error: ...`. The page's code is the
body of one `async def`, because the docs use top-level `await`, `async with` and `async for`
(as `python -m asyncio` allows and type checkers do not).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from test_docs import PAGES, python_blocks  # noqa: E402  (the suite's own block parser)

HEADER = "async def _page() -> None:  # the page's blocks, each line at its line number"
INDENT = "    "


def module_name(page: Path) -> str:
    """`docs/queries.md` -> `docs_queries`, `README.md` -> `README`."""
    relative = page.relative_to(ROOT).with_suffix("")
    return "_".join(relative.parts).replace("-", "_")


def page_module(page: Path) -> str | None:
    """The module text of a page, or None when the page has no Python block."""
    text = page.read_text()
    blocks = [block for block in python_blocks(text) if block.runs]  # no-run: may be a sketch
    if not blocks:
        return None
    lines = [""] * len(text.splitlines())
    lines[0] = HEADER  # never code: a block's first line comes after its ``` fence
    for block in blocks:
        for offset, code in enumerate(block.code.splitlines()):
            lines[block.line - 1 + offset] = INDENT + code if code.strip() else ""
    return "\n".join(lines) + "\n"


def write_modules(out: Path) -> dict[str, Path]:
    """Write a module per page into `out`; returns module file name -> page."""
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for page in PAGES:
        text = page_module(page) if page.is_file() else None
        if text is not None:
            name = f"{module_name(page)}.py"
            (out / name).write_text(text)
            written[name] = page
    return written


def run_checker(tool: str, args: list[str]) -> int:
    """Run mypy or pyright on the pages' modules; print its report with page locations."""
    # A fixed folder, emptied first: mypy's cache keeps the paths of the errors it replays.
    out = Path(tempfile.gettempdir()) / f"adyn-doc-modules-{zlib.crc32(str(ROOT).encode()):08x}"
    shutil.rmtree(out, ignore_errors=True)
    pages = write_modules(out)
    files = [str(out / name) for name in sorted(pages)]
    if tool == "mypy":
        # Only the pages are checked: errors in what they import (the suite's harness) are not
        # the docs' to report.
        command = [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", *args]
        command += files
    else:
        command = [sys.executable, "-m", "pyright", *args, *files]
    # docs/contributing.md imports the suite's harness, as a test module would
    env = {**os.environ, "MYPYPATH": str(ROOT / "tests")}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    report = result.stdout + result.stderr
    for name, page in pages.items():
        where = re.escape(str(out / name))
        report = re.sub(where, str(page.relative_to(ROOT)), report)
    print(report, end="")
    return result.returncode


def main(argv: list[str]) -> int:
    if argv[:1] == ["write"] and len(argv) == 2:
        for name, page in write_modules(Path(argv[1])).items():
            print(f"{name} <- {page.relative_to(ROOT)}")
        return 0
    if argv[:1] in (["mypy"], ["pyright"]):
        return run_checker(argv[0], argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

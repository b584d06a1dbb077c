"""The shell examples of docs/cli.md and docs/operations.md run, in order, as a user runs them.

Each page runs in a fresh project folder holding the page's `<!-- file: NAME -->` blocks (the
```python block right after that line, written to NAME); every ```bash block not marked
`<!-- no-run -->` runs there with `bash -euo pipefail`, the console script `adyn` first on PATH,
and the AWS environment pointing at the suite's moto server (with table names unique to the
test). tests/test_docs.py runs the pages' Python blocks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from adyn.testing.plugin import unique_table_template

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "docs" / "cli.md", ROOT / "docs" / "operations.md"]
FENCE = re.compile(r"^```(\w*)\s*$")
FILE = re.compile(r"^<!-- file: (?P<name>[\w./-]+) -->$")


@dataclass(frozen=True)
class Block:
    line: int
    language: str
    code: str
    marker: str  # the last non-blank line before the block ("" when none)


def blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    found: list[Block] = []
    previous = ""
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None or not opening.group(1):
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        found.append(Block(i + 2, opening.group(1), "\n".join(lines[i + 1 : end]), previous))
        previous = ""
        i = end + 1
    return found


def test_blocks_and_markers_are_found() -> None:
    page = (
        "<!-- file: a.py -->\n\n```python\nx = 1\n```\n<!-- no-run -->\n```bash\nadyn local\n```\n"
    )
    assert blocks(page) == [
        Block(4, "python", "x = 1", "<!-- file: a.py -->"),
        Block(8, "bash", "adyn local", "<!-- no-run -->"),
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_shell_examples_run(
    page: Path,
    tmp_path: Path,
    moto_endpoint: str,
    child_env: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    found = blocks(page.read_text())
    for block in found:
        named = FILE.match(block.marker)
        if named is not None:
            (tmp_path / named.group("name")).write_text(block.code + "\n")
    env = {k: v for k, v in child_env.items() if not k.startswith("AWS_")}
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        AWS_ENDPOINT_URL_DYNAMODB=moto_endpoint,
        AWS_ACCESS_KEY_ID="docs",
        AWS_SECRET_ACCESS_KEY="docs",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        ADYN_TABLE_TEMPLATE=unique_table_template(request.node.name),
    )
    shell = [b for b in found if b.language == "bash" and b.marker != "<!-- no-run -->"]
    for block in shell:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, (
            f"{page.name}, the bash block at line {block.line} exited {done.returncode}:\n"
            f"{block.code}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
        assert "Traceback" not in done.stderr, done.stderr

"""The types users' checkers see, and that they agree with what adyn does at run time.

- mypy --strict with `plugins = ["pydantic.mypy", "adyn.mypy"]` (the project's own config):
  `usage.py` and `usage_f.py` are clean; in `misuse.py` exactly the lines marked
  `# error: [code] text` are reported, each with that code and text.
- mypy --strict without plugins and pyright (strict for `usage_f.py`): `usage_f.py` is clean and
  `misuse_f.py` is reported exactly on its marked lines (F works without the plugin).
- At run time every expression the usage files build is accepted, and every misuse refused.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import misuse
import misuse_f
import pytest
import usage
import usage_f
from typed_models import Post, Reply

from adyn import Action, AdynError, Condition, F, InvalidArgument
from adyn.expressions import Arithmetic
from adyn.expressions import Path as RuntimePath

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MARK = re.compile(r"#\s*error(?::\s*\[(?P<code>[\w-]+)\]\s*(?P<text>.*))?$")
MYPY_LINE = re.compile(
    r"^(?P<file>[^:\s]+\.py):(?P<line>\d+): error: (?P<message>.*?)(?:  \[(?P<code>[\w-]+)\])?$"
)
MYPY_CONFIGS = {
    "plugins": None,  # pyproject.toml: strict, pydantic.mypy then adyn.mypy
    "plain": "[mypy]\nstrict = True\n",
    "adyn-only": "[mypy]\nstrict = True\nplugins = adyn.mypy\n",
}


@dataclass(frozen=True)
class Report:
    file: str
    line: int
    code: str | None
    message: str


def marked(name: str) -> dict[int, tuple[str | None, str]]:
    """Line -> (code, text) of every `# error` comment in a file."""
    found = {}
    source = (HERE / name).read_text()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and (match := MARK.search(token.string)):
            found[token.start[0]] = (match["code"], (match["text"] or "").strip())
    return found


def run_mypy(config: str, files: list[str], tmp: Path) -> list[Report]:
    if MYPY_CONFIGS[config] is None:
        config_file = ROOT / "pyproject.toml"
    else:
        config_file = tmp / f"mypy-{config}.ini"
        config_file.write_text(MYPY_CONFIGS[config])
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(config_file),
        "--cache-dir",
        str(ROOT / ".mypy_cache" / f"typing-{config}"),
        "--no-error-summary",
        *files,
    ]
    result = subprocess.run(command, cwd=HERE, capture_output=True, text=True, check=False)
    reports = []
    for line in result.stdout.splitlines():
        if match := MYPY_LINE.match(line):
            reports.append(
                Report(match["file"], int(match["line"]), match["code"], match["message"])
            )
        elif ": error:" in line or ": note:" not in line:
            raise AssertionError(f"unexpected mypy output: {line}\n{result.stderr}")
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return reports


def run_pyright(files: list[str]) -> list[Report]:
    command = [sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable]
    result = subprocess.run(
        [*command, *(str(HERE / f) for f in files)],
        cwd=ROOT,  # pyproject.toml: strict, as a careful user runs it
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        diagnostics = json.loads(result.stdout)["generalDiagnostics"]
    except (ValueError, KeyError):
        raise AssertionError(f"pyright did not run: {result.stdout}{result.stderr}") from None
    return [
        Report(Path(d["file"]).name, d["range"]["start"]["line"] + 1, d.get("rule"), d["message"])
        for d in diagnostics
        if d["severity"] == "error"
    ]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Report]]:
    """Each checker's errors, one run per checker over the files it is asked about."""
    tmp = tmp_path_factory.mktemp("typing")
    return {
        "plugins": run_mypy("plugins", ["usage.py", "usage_f.py", "misuse.py", "misuse_f.py"], tmp),
        "plain": run_mypy("plain", ["usage_f.py", "misuse_f.py"], tmp),
        "adyn-only": run_mypy("adyn-only", ["usage.py"], tmp),
        "pyright": run_pyright(["usage_f.py", "misuse_f.py"]),
    }


def errors_in(reports: list[Report], name: str) -> list[Report]:
    return [r for r in reports if r.file == name]


def describe(reports: list[Report]) -> str:
    return "\n".join(f"{r.file}:{r.line}: {r.message} [{r.code}]" for r in reports)


def test_every_checked_file_is_reported_on_no_other_file(
    reports: dict[str, list[Report]],
) -> None:
    # typed_models.py declares indexes without annotations: pydantic's plugin alone would
    # call them "Untyped fields"; with adyn's plugin, and for the others, nothing is wrong.
    for checker, found in reports.items():
        stray = [r for r in found if r.file not in ("misuse.py", "misuse_f.py")]
        assert not stray, f"{checker}:\n{describe(stray)}"


def test_the_plugin_reports_exactly_the_marked_misuses(
    reports: dict[str, list[Report]],
) -> None:
    expected = marked("misuse.py")
    found = errors_in(reports["plugins"], "misuse.py")
    assert sorted({r.line for r in found}) == sorted(expected), describe(found)
    for report in found:
        code, text = expected[report.line]
        assert report.code == code, describe([report])
        assert text in report.message, f"{describe([report])}\nexpected text: {text}"


@pytest.mark.parametrize("checker", ["plugins", "plain", "pyright"])
def test_misuses_through_F_are_reported_by_every_checker(
    reports: dict[str, list[Report]], checker: str
) -> None:
    found = errors_in(reports[checker], "misuse_f.py")
    assert sorted({r.line for r in found}) == sorted(marked("misuse_f.py")), describe(found)


def test_a_misuse_file_marks_every_kind_of_path() -> None:
    # the checks above mean something only if the files cover the field kinds
    text = (HERE / "misuse.py").read_text()
    for kind in ("NumberPath", "StringPath", "BytesPath", "SetPath", "ListPath", "MapPath"):
        assert kind in text
    assert len(marked("misuse.py")) >= 40 and len(marked("misuse_f.py")) >= 15


# ------------------------------------------------------------------ run time agrees


@pytest.mark.parametrize("usage", [usage, usage_f], ids=["usage", "usage_f"])
def test_what_the_types_accept_adyn_accepts(usage: ModuleType) -> None:
    usage.paths()
    usage.indexes()
    built = usage.expressions()
    assert len(built) >= 30
    assert all(isinstance(e, Condition | Action | Arithmetic) for e in built)


@pytest.mark.parametrize("misuse", [misuse, misuse_f], ids=["misuse", "misuse_f"])
def test_what_the_types_refuse_adyn_refuses(misuse: ModuleType) -> None:
    wrong: list[Callable[[], object]] = misuse.WRONG
    accepted = []
    for build in wrong:
        try:
            build()
        except (AdynError, TypeError, AttributeError):
            continue
        accepted.append(build)
    assert not accepted


def test_F_is_the_path_itself() -> None:
    assert F(Post.views) is Post.views
    assert isinstance(F(Post.address).city, RuntimePath)
    assert repr(F(Post.email)) == "Post.em"


@pytest.mark.parametrize("value", [3, "views", None, "Post.views"])
def test_F_refuses_what_is_not_a_path(value: object) -> None:
    with pytest.raises(InvalidArgument, match="F\\(\\) takes an attribute path") as info:
        F(value)
    assert isinstance(info.value, ValueError)


def test_F_of_an_object_attribute_says_to_read_the_class() -> None:
    post = Post.model_construct(forum="f", views=3)
    with pytest.raises(InvalidArgument, match="on the model class, not on an object"):
        F(post.views)


def test_indexes_are_bound_to_the_class_they_are_read_from() -> None:
    assert Post.by_user.model is Post and Reply.by_user.model is Reply
    assert Post.by_views.model is Post


def test_a_bool_never_combines_with_a_condition() -> None:
    # the signatures accept bool (a comparison's type without the plugin); run time does not
    with pytest.raises(TypeError):
        True & (Post.views > 3)
    with pytest.raises(TypeError):
        (Post.views > 3) | False

"""Project tasks: `python3 -m nox -s ci` runs everything CI runs; `-s demo` runs the demo.

Sessions: lint, typecheck, tests, docs, ci (all of them, plus a benchmark smoke run, in one
environment), demo, bench, plugin (the typing tests on the oldest and newest supported mypy),
pythons (the tests on Python 3.12 and 3.13).
Arguments after `--` go to pytest (tests, ci) or to the benchmarks (bench).
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["ci"]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
SERVERS = ROOT / "tests" / "servers"
LINTED = ["src", "tests", "examples", "benchmarks", "noxfile.py", "hatch_build.py"]
EXTRAS = nox.project.load_toml(ROOT / "pyproject.toml")["project"]["optional-dependencies"]


def install_dynalite(session: nox.Session) -> None:
    """Install the test suite's dynalite from tests/servers' lock file, once."""
    if not (SERVERS / "node_modules" / "dynalite" / "cli.js").is_file():
        session.run("npm", "ci", "--prefix", str(SERVERS), "--no-audit", "--no-fund", external=True)


def run_lint(session: nox.Session) -> None:
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)


def run_typecheck(session: nox.Session) -> None:
    session.run("mypy", "--strict", "src/")
    # What users write, as their checkers see it: mypy with pydantic's and adyn's plugins
    # (pyproject.toml) on the examples and on every runnable block of docs/ and README.md, and
    # pyright (strict, no plugin: the examples use adyn.F) on the examples.
    session.run("mypy", "--strict", "examples/")
    session.run("python", "tests/typing/check_docs.py", "mypy")
    session.run("pyright")


def run_tests(session: nox.Session) -> None:
    install_dynalite(session)
    # Two worker processes (CI has two cores; each worker starts its own moto and dynalite on
    # free ports): about half the wall-clock time of one. `-- -n0` runs in one process.
    session.run("pytest", "-n", "2", *session.posargs)


def run_docs(session: nox.Session) -> None:
    site = str(ROOT / "site")
    session.run("mkdocs", "build", "--strict", "--site-dir", site, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(*(dep for dep in EXTRAS["lint"] if dep.startswith("ruff")))
    run_lint(session)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/, examples/ and the docs' code; pyright on examples/."""
    session.install(".[test,lint]")  # the examples and docs import what the tests install
    run_typecheck(session)


@nox.session
@nox.parametrize("mypy", ["1.10.1", "2.4.1"])
def plugin(session: nox.Session, mypy: str) -> None:
    """The typing tests on the oldest and newest mypy the plugin supports (pyproject.toml)."""
    session.install(".[test]", f"mypy=={mypy}")
    session.run("pytest", "tests/typing", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on moto and dynalite (and $ADYN_TEST_ENDPOINT when set)."""
    session.install(".[test]")
    run_tests(session)


@nox.session(python=["3.12", "3.13"])
def pythons(session: nox.Session) -> None:
    """The test suite on the other supported interpreters (opt-in: CI runs 3.11 only, to stay
    within its time; each builds the compiled decoder for its interpreter)."""
    session.install(".[test]")
    run_tests(session)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site, warnings as errors."""
    session.install(*EXTRAS["docs"])
    run_docs(session)


@nox.session
def ci(session: nox.Session) -> None:
    """lint, typecheck, tests, docs and a benchmark smoke run, in that order, in one environment."""
    session.install(".[test,lint,docs,bench]")
    run_lint(session)
    run_typecheck(session)
    run_tests(session)
    run_docs(session)
    # every case once against every peer: the benchmark command keeps working (no figures kept)
    session.run("python", "-m", "benchmarks", "--quick", "--reps", "1", "--check")


@nox.session
def demo(session: nox.Session) -> None:
    """Run examples/quickstart.py against an embedded DynamoDB."""
    session.install(".[testing]")
    session.run("python", "examples/quickstart.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks (python -m benchmarks; `-- --write-docs` refreshes docs/performance.md).

    dynamoxy (Python 3.12) and aioboto3 (older pinned aiobotocore) run in virtualenvs of their
    own that the benchmark builds from benchmarks/requirements-*.txt and caches in .cache/.
    """
    session.install(".[bench,testing]")
    session.run("python", "-m", "benchmarks", *session.posargs)

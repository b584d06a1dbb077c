"""Resume states of `export` and `import`: a JSON file beside the data, replaced atomically.

The state names the job (model, table, ...) so `--resume` refuses a state of another job, and
records how far the job got in a form that stays true after a crash: it is only ever written
after the data it describes is on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from ._common import CommandError


def state_path(data: Path) -> Path:
    """Where the state of a job on `data` lives: `data` + `.adyn-state`."""
    return data.with_name(data.name + ".adyn-state")


def require_state(data: Path) -> None:
    """`--resume` needs the state file of `data`: say so before anything else happens."""
    path = state_path(data)
    if not path.exists():
        raise CommandError(
            f"--resume: there is no state file {path} (the job never started, or ran "
            "without it); run without --resume"
        )


class ResumeState:
    """The state file of one job; `identity` must match for `--resume` to use it."""

    def __init__(self, path: Path, kind: str, identity: dict[str, Any]) -> None:
        self.path = path
        self.kind = kind
        self.identity = identity

    def load(self) -> dict[str, Any]:
        """The saved state (blocking). CommandError when it is missing or another job's."""
        try:
            state = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            raise CommandError(
                f"--resume: there is no state file {self.path} (the job never started, or "
                "ran without it); run without --resume"
            ) from None
        except orjson.JSONDecodeError as exc:
            raise CommandError(f"--resume: {self.path} is not a state file: {exc}") from None
        if not isinstance(state, dict) or state.get("format") != self.kind:
            raise CommandError(f"--resume: {self.path} is not the state of an {self.kind} job")
        for name, value in self.identity.items():
            if state.get(name) != value:
                raise CommandError(
                    f"--resume: {self.path} is for {name} {state.get(name)!r}, not {value!r}"
                )
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Write the state atomically (blocking)."""
        from adyn._files import write_atomically

        data = {"format": self.kind, **self.identity, **state}
        write_atomically(self.path, orjson.dumps(data, option=orjson.OPT_INDENT_2))


def model_identity(model: type) -> str:
    return f"{model.__module__}.{model.__qualname__}"

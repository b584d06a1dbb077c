"""Build hook: compile adyn._cdecode, the native twin of the generated item decoder.

The extension is optional. Where it cannot be built (no C compiler, an interpreter without
headers, ADYN_PURE_PYTHON_BUILD=1) the wheel is pure Python and adyn decodes with its
generated Python functions: same objects, slower pages (see docs/performance.md). setuptools
only drives the platform's compiler here; it is not a runtime dependency.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MODULE = "adyn._cdecode"
SOURCE = "src/adyn/_cdecode.c"


class NativeDecoderHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or os.environ.get("ADYN_PURE_PYTHON_BUILD"):
            return
        try:
            built = self._compile()
        except Exception as exc:
            print(f"adyn: the compiled decoder was not built ({exc}); pure Python", file=sys.stderr)
            return
        name = Path(built).name
        if version == "editable":  # the source tree is what an editable install imports
            shutil.copyfile(built, Path(self.root, "src", "adyn", name))
        else:
            build_data["force_include"][built] = f"adyn/{name}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def _compile(self) -> str:
        from setuptools import Distribution, Extension
        from setuptools.command.build_ext import build_ext

        work = tempfile.mkdtemp(prefix="adyn-build-")
        extension = Extension(MODULE, [str(Path(self.root, SOURCE))], optional=False)
        command = build_ext(Distribution({"name": "adyn", "ext_modules": [extension]}))
        command.build_lib = os.path.join(work, "lib")
        command.build_temp = os.path.join(work, "temp")
        command.ensure_finalized()
        command.run()
        return str(command.get_ext_fullpath(MODULE))

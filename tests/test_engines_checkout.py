"""Make `unifork_rt.engines` this checkout's engines/ folder; imported by every engine test.

pyproject maps engines/ -> unifork_rt.engines (setuptools package-dir). An editable install
made from another checkout of the repository (another git worktree) keeps mapping that name
to the other checkout, while `unifork_rt` itself is imported from the current directory, so
the engine tests would silently test someone else's code. When `unifork_rt` comes from this
checkout but `unifork_rt.engines` does not, load engines/ from here. Otherwise (a regular or
editable install of this checkout, CI's venv) nothing changes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ROOT / "engines"


def use_this_checkout() -> None:
    import unifork_rt

    if Path(unifork_rt.__file__).resolve().parent != ROOT / "unifork_rt":
        return  # an installed unifork_rt: test it as installed
    current = sys.modules.get("unifork_rt.engines")
    if current is None:
        import unifork_rt.engines as current
    if Path(current.__file__).resolve().parent == ENGINES:
        return
    for name in [n for n in sys.modules if n == "unifork_rt.engines" or n.startswith("unifork_rt.engines.")]:
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location("unifork_rt.engines", ENGINES / "__init__.py",
                                                  submodule_search_locations=[str(ENGINES)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["unifork_rt.engines"] = module
    spec.loader.exec_module(module)
    unifork_rt.engines = module


use_this_checkout()


def test_engine_tests_import_this_checkout():
    import unifork_rt
    import unifork_rt.engines

    if Path(unifork_rt.__file__).resolve().parent == ROOT / "unifork_rt":
        assert Path(unifork_rt.engines.__file__).resolve().parent == ENGINES

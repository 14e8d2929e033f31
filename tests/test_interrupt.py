"""Ctrl-C held through an import (unifork_rt/interrupt.py).

A KeyboardInterrupt inside a C extension's import can be printed by that extension (numpy's
import_array) before "interrupted": the CLI's handler holds a SIGINT that lands in the import
machinery and raises it once the import is over. These tests send real signals to a child.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from unifork_rt import interrupt

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="POSIX timers only")

CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from unifork_rt.interrupt import Handler
    h = Handler().install()
    try:
        import slowmod          # its body runs ~1 s of bytecode and writes 'started' first
        time.sleep(5)           # the held interrupt must arrive here, well before 5 s
        print("no interrupt", flush=True)
    except KeyboardInterrupt:
        # nothing is printed between the import and the sleep: the held interrupt may come at once (a print
        # there was cut in two by it once, "importedinterrupted ..."). A module whose import failed is gone
        # from sys.modules; one that ran to its end has done = True
        mod = sys.modules.get("slowmod")
        print("interrupted", "importing" if mod is None else "after import", "done", getattr(mod, "done", None),
              "received", len(h.received), flush=True)
""")

SLOWMOD = textwrap.dedent("""
    import pathlib, sys, time
    pathlib.Path(sys.argv[2]).write_text("started")
    end = time.monotonic() + 1.0
    n = 0
    while time.monotonic() < end:   # bytecode, so a Python signal handler runs in here
        n += 1
    done = True
""")


def _child(tmp_path: Path, repo: Path) -> tuple[subprocess.Popen, Path]:
    (tmp_path / "slowmod.py").write_text(SLOWMOD)
    marker = tmp_path / "started"
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(repo), str(marker)], cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{repo}"},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return p, marker


def test_sigint_during_an_import_is_raised_after_it(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    p, marker = _child(tmp_path, repo)
    end = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < end and p.poll() is None:
        time.sleep(0.01)
    assert marker.exists(), p.communicate()
    p.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    out, err = p.communicate(timeout=60)
    waited = time.monotonic() - t0
    print(f"stdout {out!r} stderr {err!r}, {waited:.2f} s after SIGINT")
    assert out.split("\n")[:1] == ["interrupted after import done True received 1"], (out, err)
    assert "Traceback" not in err
    assert waited < 4, "the held interrupt was raised late (it must come within a poll of the import's end)"


def test_importing_sees_the_import_machinery():
    assert not interrupt.importing(sys._getframe())
    seen = []

    class Finder:  # a meta-path finder runs inside importlib's _find_and_load
        def find_spec(self, name, path=None, target=None):
            if name == "unifork_probe_module":
                seen.append(interrupt.importing(sys._getframe()))
            return None

    sys.meta_path.insert(0, Finder())
    try:
        with pytest.raises(ModuleNotFoundError):
            import unifork_probe_module  # noqa: F401
    finally:
        sys.meta_path.pop(0)
    assert seen == [True]


def test_a_held_interrupt_is_raised_before_a_commit():
    h = interrupt.Handler()
    h.held = True
    with pytest.raises(KeyboardInterrupt):
        h.raise_if_held()
    assert not h.held
    h.raise_if_held()  # nothing held: nothing raised

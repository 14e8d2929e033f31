"""Ctrl-C in the `unifork-rt` process: a KeyboardInterrupt, but never in the middle of an import.

A KeyboardInterrupt raised while a C extension is being imported can be printed by that
extension before it fails: ONNX Runtime's module imports numpy's C API, and numpy's
`import_array` calls `PyErr_Print()` when that import raises. The user then saw a traceback
above the one-line "interrupted" (the hostile battery's "SIGINT at 10 moments" case, about one
run in 200). So a SIGINT that lands inside the import machinery is remembered and raised once
the import is over: a SIGALRM polls every POLL_S seconds until no import frame is on the stack.
Where there is no setitimer (not POSIX), the KeyboardInterrupt is raised at once, as before.
"""

from __future__ import annotations

import signal

POLL_S = 0.01
_IMPORT_FILES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
_TIMER = hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM")


class Handler:
    """The process's SIGINT handler; `received` lists every SIGINT, raised or still held."""

    def __init__(self):
        self.received: list[int] = []
        self.held = False

    def install(self) -> "Handler":
        if _TIMER:
            signal.signal(signal.SIGALRM, self._on_alarm)
        signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def _on_sigint(self, signum, frame):
        self.received.append(signum)  # remembered: some imports catch the KeyboardInterrupt and fail otherwise
        self._raise_when_safe(frame)

    def _on_alarm(self, signum, frame):
        if self.held:
            self._raise_when_safe(frame)

    def _raise_when_safe(self, frame):
        if _TIMER and importing(frame):
            self.held = True
            signal.setitimer(signal.ITIMER_REAL, POLL_S)
            return
        self.held = False
        raise KeyboardInterrupt

    def raise_if_held(self) -> None:
        """Before SIGINT is ignored for good (a commit, the end): a held interrupt is raised now."""
        if self.held:
            self.cancel()
            raise KeyboardInterrupt

    def cancel(self) -> None:
        self.held = False
        if _TIMER:
            signal.setitimer(signal.ITIMER_REAL, 0)


def importing(frame) -> bool:
    """Whether `frame` runs inside the import machinery (a module body or an extension's init)."""
    while frame is not None:
        if frame.f_code.co_filename in _IMPORT_FILES:
            return True
        frame = frame.f_back
    return False

"""The `unifork-rt` console entry point (also `python -m unifork_rt`).

Kept tiny on purpose: a Ctrl-C while the heavy modules are still importing ends in one line
("interrupted") and exit 130, like a Ctrl-C at any later moment (see cli.run).
"""

import os
import sys


def main() -> None:
    try:
        from .cli import run

        code = run(sys.argv[1:])
    except KeyboardInterrupt:
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # ending now: a second Ctrl-C must not print a traceback
        try:
            print("interrupted", file=sys.stderr)
        except OSError:
            pass
        code = 130
    # Exit here, skipping the interpreter's own shutdown: a Ctrl-C that landed inside a native
    # library (ONNX Runtime) can leave CPython's "unhandled KeyboardInterrupt" mark set, and
    # shutdown would then kill the process with SIGINT, replacing the status decided above.
    # Everything is written and closed by now; only the standard streams need a flush.
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    main()

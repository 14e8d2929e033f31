"""The `unifork-rt` console entry point (also `python -m unifork_rt`).

Kept tiny on purpose: a Ctrl-C while the heavy modules are still importing ends in one line
("interrupted") and exit 130, like a Ctrl-C at any later moment (see cli.run; 143 for a SIGTERM).
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
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # nor a second SIGTERM (cli.run makes it a Ctrl-C)
        try:
            print("interrupted", file=sys.stderr)
        except OSError:
            pass
        cli = sys.modules.get(__package__ + ".cli")  # 143 where a SIGTERM stopped it (cli.interrupted_status)
        handler = getattr(cli, "_handler", None)
        code = cli.interrupted_status(handler.received) if handler is not None else 130
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

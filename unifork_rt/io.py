"""Atomic file output: a temporary file in the target folder, then one rename.

An interrupted or failed write leaves the previous file intact and no partial file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import UniforkError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`.

    On any exception the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.chmod(tmp, _mode_for(path))  # mkstemp makes 0600; the result gets what open() would give
    except OSError as e:
        raise UniforkError(f"cannot write {path}: {_reason(e)}") from None
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UniforkError(f"cannot write {path}: {_reason(e)}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _mode_for(path: Path) -> int:
    """The mode a plain open() would give a new file (0666 less the umask), or the mode of
    the file being replaced."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        pass
    umask = 0o022
    try:  # read, not set: os.umask() would change it for every thread for a moment
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o666 & ~umask


def _reason(e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return "the disk is full; free some space or write elsewhere with -o/--out"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied; choose a writable folder"
    return e.strerror or str(e)


def user_cache_dir(*parts: str) -> Path:
    """unifork-rt's per-user cache folder (like platformdirs' user_cache_dir, without the dependency):
    $UNIFORK_RT_CACHE, else $XDG_CACHE_HOME/unifork-rt, else ~/.cache/unifork-rt on Linux,
    ~/Library/Caches/unifork-rt on macOS, %LOCALAPPDATA%\\unifork-rt\\Cache on Windows."""
    import sys

    if os.environ.get("UNIFORK_RT_CACHE"):
        root = Path(os.environ["UNIFORK_RT_CACHE"])
    elif sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "unifork-rt" / "Cache"
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Caches" / "unifork-rt"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "unifork-rt"
    return root.joinpath(*parts)

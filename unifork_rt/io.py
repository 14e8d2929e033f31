"""Atomic file output: temporary files in the target folder, fsync, then renames.

An interrupted or failed write leaves the previous files intact and no partial file behind;
several files are written all or none (`atomic_paths`). Temporary names are short and fixed
in length (`.unifork-PID-XXXXXXXX.tmp`), so a target name of up to the file system's limit
still works, and the temporary files of a process that died (SIGKILL) are removed by the
next write into the same folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

from .errors import InputError, ModelFolderError, UniforkError

_TMP = re.compile(r"\.unifork-(\d+)-[A-Za-z0-9_]{1,16}\.(tmp|bak)")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync it and rename it over `path`.

    On any exception the temporary file is removed and `path` is left as it was.
    """
    with atomic_paths([path]) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_paths(paths: Sequence[str | Path], overwrite: Sequence[bool] | None = None) -> Iterator[list[Path]]:
    """Yield one temporary path per target; on success commit them all, or none.

    overwrite[i] False: target i must not exist when it is committed (checked atomically, by a
    hard link); True (the default): it is replaced. If a commit fails half-way, the targets
    already committed are put back as they were. A symlink at a target is replaced by the new
    file, never written through.
    """
    paths = [Path(p) for p in paths]
    overwrite = [True] * len(paths) if overwrite is None else list(overwrite)
    tmps: list[Path] = []
    try:
        for path in paths:
            tmps.append(_new_tmp(path))
        yield tmps
        for tmp in tmps:
            _fsync(tmp)
        _commit(tmps, paths, overwrite)
    except OSError as e:
        named = {str(getattr(e, "filename", None)), str(getattr(e, "filename2", None))}
        where = next((p for p in paths if str(p) in named), paths[0] if len(paths) == 1 else None)
        raise UniforkError(f"cannot write {shown(where) if where is not None else _some(paths)}: "
                           f"{_reason(e)}") from None
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


def _some(paths: Sequence[Path], show: int = 3) -> str:
    """The first few of many paths, for a one-line message (draw --n 400 names 400 files)."""
    names = ", ".join(shown(p) for p in paths[:show])
    return names if len(paths) <= show else f"{names} and {len(paths) - show} more"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _new_tmp(path: Path) -> Path:
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder)
    fd, tmp = tempfile.mkstemp(prefix=f".unifork-{os.getpid()}-", suffix=".tmp", dir=folder)
    os.close(fd)
    os.chmod(tmp, _mode_for(path))  # mkstemp makes 0600; the result gets what open() would give
    return Path(tmp)


def _commit(tmps: list[Path], paths: list[Path], overwrite: list[bool]) -> None:
    """Rename every temporary file onto its target; on any failure (or an interrupt), undo."""
    done: list[tuple[Path, Path | None]] = []  # (target, backup of what it replaced)
    several = len(paths) > 1  # one rename is atomic by itself: only several need backups to undo
    try:
        for tmp, path, replace in zip(tmps, paths, overwrite):
            if not replace:
                if _link(tmp, path):  # EEXIST if the target appeared meanwhile: never clobbers
                    done.append((path, None))
                    continue
                if os.path.lexists(path):  # a file system without hard links: check, then rename
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
            backup = None
            if several and os.path.lexists(path):
                backup = Path(tempfile.mktemp(prefix=f".unifork-{os.getpid()}-", suffix=".bak",
                                              dir=path.parent if str(path.parent) else "."))
                if not _link(path, backup):
                    backup = None
            try:
                os.replace(tmp, path)
            except BaseException:
                if backup is not None:
                    backup.unlink(missing_ok=True)
                raise
            done.append((path, backup))
    except BaseException:
        for path, backup in reversed(done):  # best effort: the targets as they were
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, path)
                else:
                    path.unlink()
        raise
    for _, backup in done:
        if backup is not None:
            backup.unlink(missing_ok=True)
    for folder in {p.parent for p in paths}:
        _fsync_dir(folder)


def _link(src: Path, dst: Path) -> bool:
    """Hard-link src to dst (False where the file system has no hard links); EEXIST raises."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            return False
        raise
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove our temporary files in `folder` whose writing process is gone (killed mid-write).

    Only files named by this module, owned by this user, of a process id that no longer runs.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    for entry in entries:
        m = _TMP.fullmatch(entry.name)
        if not m or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and (uid is None or st.st_uid == uid):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process (or not ours to judge): leave its files alone
    return True


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make the renames durable; not every file system lets a folder be opened or synced."""
    with contextlib.suppress(OSError):
        fd = os.open(folder if str(folder) else ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def default_modes(folder: Path) -> None:
    """Give a folder made by tempfile.mkdtemp (0700) and the files in it (some writers use 0600)
    the modes a plain mkdir / open() would give them, before it is moved into place."""
    file_mode = _new_file_mode()
    os.chmod(folder, file_mode | ((file_mode & 0o444) >> 2))  # + x wherever r
    for p in Path(folder).iterdir():
        if p.is_file() and not p.is_symlink():
            os.chmod(p, file_mode)


def _mode_for(path: Path) -> int:
    """The mode a plain open() would give a new file (0666 less the umask), or the permission
    bits of the regular file being replaced. A symlink is replaced, not written through, so it
    lends no mode; set-id and sticky bits are never carried over."""
    try:
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode) & 0o777
    except OSError:
        pass
    return _new_file_mode()


def _new_file_mode() -> int:
    """0666 less the process's umask."""
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
    if e.errno == errno.ENAMETOOLONG:
        return "the file name is too long for this file system; choose a shorter one"
    if e.errno == errno.EEXIST:
        return "it already exists and was not named to be replaced"
    if e.errno == errno.EISDIR:
        return "it is a folder"
    return e.strerror or str(e)


def shown(path: str | Path, limit: int = 120) -> str:
    """A path for a one-line message: control characters escaped as repr() would (a newline in a
    name must not split the line), a very long path cut in the middle."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(path))
    return text if len(text) <= limit else f"{text[:limit // 2]}…{text[-(limit // 3):]}"


def path_problem(e: OSError) -> str:
    """Why a path the user named cannot be looked at or read, in a few words."""
    if e.errno == errno.ENAMETOOLONG:
        return "the name is too long for this file system; choose a shorter one"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; check the permissions of it and of the folders above it"
    if e.errno == errno.ELOOP:
        return "it is a loop of symbolic links"
    return e.strerror or str(e)


def probe(path: str | Path) -> os.stat_result | None:
    """os.stat of a path the user named, or None where nothing is there (nor a dangling link's
    target, nor a folder where a parent file is). Any other failure (a name too long, a folder on
    the way that cannot be searched, a symlink loop) is one InputError naming the path."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as e:  # ValueError: an embedded NUL byte
        why = path_problem(e) if isinstance(e, OSError) else str(e)
        raise InputError(f"cannot access {shown(path)}: {why}") from None


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


def read_json(path: Path, fix: str | None = None):
    """The JSON in a model or checkpoint file; text that is not JSON (or not UTF-8) is a
    ModelFolderError naming the file and, when given, the fix."""
    import json

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFolderError(f"{path} is not valid JSON ({e})" + (f"; {fix}" if fix else "")) from None
    except RecursionError:
        raise ModelFolderError(f"{path} is not valid JSON (it is nested too deeply)"
                               + (f"; {fix}" if fix else "")) from None
    except OSError as e:
        raise ModelFolderError(f"cannot read {shown(path)}: {path_problem(e)}") from None

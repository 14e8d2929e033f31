"""Run the `tritonserver` that nvidia-pytriton ships (Triton 2.51 and its Python backend) on a
model repository, as a child process we start, watch and stop.

Why these steps: the Python backend's stub is a separate binary that embeds Python by linking
`libpython3.x.so`, so it must find *this* interpreter's library (its LIBDIR first on
LD_LIBRARY_PATH) and this environment's packages (its bin first on PATH); the stub for this
Python version is picked from the wheel's `python_backend_stubs/3.x/`, as pytriton does.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissingDependencyError, UniforkError

MIN_GLIBC = (2, 35)


class ServerError(UniforkError):
    """Triton did not start, or stopped on its own."""


@dataclass(frozen=True)
class TritonInstall:
    server: Path  # the tritonserver binary
    python_backend: Path  # libtriton_python.so and triton_python_backend_utils.py
    stub: Path  # triton_python_backend_stub for this Python version
    libs: Path  # the wheel's bundled shared libraries


def find_triton() -> TritonInstall:
    """The Triton that nvidia-pytriton installed, or an error that says what to install."""
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("serving needs Triton Inference Server from nvidia-pytriton, which is not "
                                     "installed; install it with: pip install 'unifork-rt[serve]'")
    libc, version = platform.libc_ver()
    if libc == "glibc" and tuple(int(v) for v in version.split(".")[:2]) < MIN_GLIBC:
        raise MissingDependencyError(f"Triton from nvidia-pytriton needs glibc >= {'.'.join(map(str, MIN_GLIBC))}, "
                                     f"this system has {version}: serve in NVIDIA's Triton container instead "
                                     "(`unifork-rt repo`, docs/SERVING.md)")
    root = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
    py = f"{sys.version_info[0]}.{sys.version_info[1]}"
    install = TritonInstall(root / "bin" / "tritonserver", root / "backends" / "python",
                            root / "python_backend_stubs" / py / "triton_python_backend_stub",
                            root.parent.parent / "nvidia_pytriton.libs")
    for what, path in (("tritonserver", install.server), (f"the Python {py} backend stub", install.stub),
                       ("the Python backend", install.python_backend / "libtriton_python.so")):
        if not path.is_file():
            raise MissingDependencyError(f"{what} is missing from nvidia-pytriton ({path}): reinstall it with "
                                         "pip install --force-reinstall 'unifork-rt[serve]'")
    return install


def python_library_dir() -> str:
    """This interpreter's LIBDIR, where libpython3.x.so is; an error if Python was built without it."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    ldlibrary = sysconfig.get_config_var("LDLIBRARY") or ""
    if not ldlibrary.endswith(".so") or not (Path(libdir) / ldlibrary).is_file():
        raise MissingDependencyError(f"this Python ({sys.executable}) has no shared libpython in {libdir or '?'}, "
                                     "which Triton's Python backend links: use a Python built with "
                                     "--enable-shared (Debian/Ubuntu's python3, conda, or pyenv with "
                                     "PYTHON_CONFIGURE_OPTS=--enable-shared)")
    return libdir


def backend_directory(install: TritonInstall, workdir: Path) -> Path:
    """A --backend-directory whose python/ holds the backend and the stub for this Python version."""
    folder = workdir / "backends" / "python"
    folder.mkdir(parents=True, exist_ok=True)
    for src, name in ((install.python_backend / "libtriton_python.so", "libtriton_python.so"),
                      (install.python_backend / "triton_python_backend_utils.py", "triton_python_backend_utils.py"),
                      (install.stub, "triton_python_backend_stub")):
        link = folder / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(src)
    return folder.parent


def server_env(install: TritonInstall) -> dict[str, str]:
    env = dict(os.environ)
    paths = [python_library_dir(), str(install.libs), env.get("LD_LIBRARY_PATH", "")]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in paths if p)
    # not resolved: a venv's bin/python is a link, and the link's folder is what makes it the venv
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


@dataclass(frozen=True)
class Endpoints:
    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002

    @property
    def local_host(self) -> str:
        """Where a client on this machine connects (a wildcard address is not one)."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else "::1" if self.host == "::" else self.host

    @property
    def http(self) -> str:
        return f"{self.local_host}:{self.http_port}"

    @property
    def grpc(self) -> str:
        return f"{self.local_host}:{self.grpc_port}"


class TritonServer:
    """tritonserver on a repository, in its own process group so that a terminal's Ctrl-C reaches
    us (and we stop it in order) rather than killing it mid-request.

    >>> with TritonServer(repo, Endpoints(), workdir) as server:   # started and ready
    ...     ...                                                     # stopped on exit
    """

    def __init__(self, repo: Path, endpoints: Endpoints, workdir: Path, exit_timeout_s: int = 10):
        self.repo, self.endpoints, self.workdir = Path(repo), endpoints, Path(workdir)
        self.exit_timeout_s = exit_timeout_s
        self.log_path = self.workdir / "triton.log"
        self.proc: subprocess.Popen | None = None

    def command(self, install: TritonInstall) -> list[str]:
        e = self.endpoints
        return [str(install.server), f"--model-repository={self.repo}",
                f"--backend-directory={backend_directory(install, self.workdir)}",
                f"--http-address={e.host}", f"--http-port={e.http_port}",
                f"--grpc-address={e.host}", f"--grpc-port={e.grpc_port}",
                f"--metrics-address={e.host}", f"--metrics-port={e.metrics_port}",
                f"--exit-timeout-secs={self.exit_timeout_s}", "--log-info=true",
                # explicit control so that watch() can reload a model whose instance died
                "--model-control-mode=explicit", "--load-model=*"]

    def start(self) -> "TritonServer":
        install = find_triton()
        cmd, env = self.command(install), server_env(install)
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True)
        return self

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.endpoints.http}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        """Poll readiness (every model loaded) until timeout_s; fail with the log's tail."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerError(f"tritonserver exited with status {self.proc.returncode} while starting "
                                  f"(is a port taken?); its log {self.log_path} ends:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.25)
        raise ServerError(f"tritonserver was not ready after {timeout_s:.0f} s; its log {self.log_path} "
                          f"ends:\n{self.log_tail()}")

    def instances(self) -> dict[str, list[int]]:
        """Live model instances: the Python-backend stub processes per model (pids), from /proc.

        Each instance is a child of tritonserver running `REPO/MODEL/1/model.py`."""
        out: dict[str, list[int]] = {}
        if not self.alive():
            return out
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue  # it exited while we looked
            if ppid != self.proc.pid or len(argv) < 2 or not argv[1].endswith(b"model.py"):
                continue
            model = Path(argv[1].decode(errors="replace")).parent.parent.name
            out.setdefault(model, []).append(int(entry.name))
        return out

    def reload(self, model: str, timeout_s: float = 180.0) -> None:
        req = urllib.request.Request(f"http://{self.endpoints.http}/v2/repository/models/{model}/load", data=b"",
                                     method="POST")
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            r.read()

    def watch(self, say, interval_s: float = 1.0) -> None:
        """Until tritonserver exits: report a model instance whose process died and reload its model.

        Triton's Python backend does not restart a dead stub: it keeps sending batches to it, which
        fail ("Stub process ... is not healthy"). A reload starts fresh instances while the live
        ones keep serving, then retires the old ones."""
        expected = {m: len(p) for m, p in self.instances().items()}
        while self.alive():
            try:
                self.proc.wait(timeout=interval_s)
                break
            except subprocess.TimeoutExpired:
                pass
            live = self.instances()
            for model, count in expected.items():
                if len(live.get(model, [])) < count and self.alive():
                    say(f"model {model}: {count - len(live.get(model, []))} of its {count} instances died; "
                        "reloading it (its other instances keep serving)")
                    try:
                        self.reload(model)
                        say(f"model {model}: reloaded")
                    except (urllib.error.URLError, OSError) as e:
                        say(f"model {model}: reload failed ({e}); its live instances keep serving")
                        expected[model] = len(live.get(model, []))  # do not retry every second

    def stop(self) -> int | None:
        """SIGTERM: Triton finishes in-flight requests (up to exit_timeout_s) and unloads the models,
        whose stub processes exit with it. Returns tritonserver's exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.exit_timeout_s + 20)
            except subprocess.TimeoutExpired:
                # it hung: end its process group (the server and its stubs, all ours)
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def __enter__(self) -> "TritonServer":
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

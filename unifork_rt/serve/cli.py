"""`unifork-rt serve` and `unifork-rt repo`: Triton Inference Server on a bundle.

Nothing here imports Triton, its client or the runtime at import time: the CLI stays light.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
from pathlib import Path

import click

from ..cli import FiniteFloat

_PORT = click.IntRange(1, 65535)


def _repo_options(f):
    from ..runtime.backend import BACKENDS, DEFAULT_BACKEND

    f = click.option("--threads", type=int, default=0, show_default=True,
                     help="ONNX Runtime threads per instance (0 = all cores). With several CPU instances, "
                          "instances x threads = cores avoids oversubscription.")(f)
    f = click.option("--queue-delay-us", type=int, default=5000, show_default=True,
                     help="How long a request may wait in Triton's queue for batch-mates (microseconds).")(f)
    f = click.option("--max-batch", type=int, default=8, show_default=True,
                     help="Requests per batch (Triton's dynamic batching for caption and draw).")(f)
    f = click.option("--gpus", default=None, help="Comma-separated GPU ids: run the instances on GPUs (Triton's "
                     "KIND_GPU, --instances per GPU); needs a GPU backend. Default: CPU instances.")(f)
    f = click.option("--instances", type=int, default=1, show_default=True,
                     help="Model instances (processes) per model, and per GPU with --gpus. On a CPU, one instance "
                          "per core with --threads 1, and --max-batch about the concurrency / instances, serve the "
                          "most (docs/SERVING.md).")(f)
    return click.option("--backend", default=DEFAULT_BACKEND, show_default=True,
                        help=f"Execution backend inside each instance: {', '.join(BACKENDS)}.")(f)


def _settings(bundle: str, backend, instances, gpus, max_batch, queue_delay_us, threads):
    from ..errors import InputError
    from .repo import RepoSettings

    ids: tuple[int, ...] = ()
    if gpus is not None:
        try:
            ids = tuple(int(g) for g in gpus.split(",") if g.strip())
        except ValueError:
            raise InputError(f"--gpus {gpus!r}: give comma-separated GPU ids, e.g. 0,1") from None
        if not ids:
            raise InputError(f"--gpus {gpus!r} names no GPU: give comma-separated GPU ids, e.g. 0,1 (or leave "
                             "--gpus out for CPU instances)")
    return RepoSettings(bundle=bundle, backend=backend, instances=instances, max_batch=max_batch,
                        queue_delay_us=queue_delay_us, threads=threads, kind="gpu" if gpus is not None else "cpu", gpus=ids)


@click.command()
@click.argument("bundle", required=False, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The model repository folder to write.")
@click.option("--bundle-path", default=None,
              help="The bundle's path as the server will see it (e.g. inside a container). Default: BUNDLE's "
                   "absolute path; without BUNDLE, the model bundled with the server's unifork-rt.")
@_repo_options
def repo(bundle, out, bundle_path, backend, instances, gpus, max_batch, queue_delay_us, threads):
    """Write a Triton model repository for BUNDLE (default: the bundled model) into --out.

    \b
    Models caption, caption_stream and draw (Python backend, running unifork-rt's runtime);
    for `tritonserver --model-repository OUT`, e.g. in NVIDIA's Triton container on a GPU.
    Tensor names and shapes: docs/SERVING.md.
    """
    from .repo import write_repository

    path = bundle_path if bundle_path is not None else str(bundle.resolve()) if bundle is not None else ""
    folder = write_repository(out, _settings(path, backend, instances, gpus, max_batch, queue_delay_us, threads), bundle)
    click.echo(f"wrote {folder}")


def check_endpoints(e) -> None:
    """Refuse, before Triton starts, a host that is not an address of this machine, the same port
    twice, and a port something else already listens on (found by binding it for a moment)."""
    import errno
    import socket

    from ..errors import InputError

    ports = {"--http-port": e.http_port, "--grpc-port": e.grpc_port, "--metrics-port": e.metrics_port}
    if len(set(ports.values())) < len(ports):
        raise InputError(f"the ports must differ: {', '.join(f'{k} {v}' for k, v in ports.items())}")
    for option, port in ports.items():
        try:
            infos = socket.getaddrinfo(e.host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except (socket.gaierror, UnicodeError) as err:
            raise InputError(f"--host {e.host!r} is not an address or host name this machine can listen on "
                             f"({getattr(err, 'strerror', None) or err}); e.g. 127.0.0.1 or 0.0.0.0") from None
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no conflict
            try:
                sock.bind(address)
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    raise InputError(f"port {port} on {e.host} is already in use (another server?): stop it or "
                                     f"choose another {option}") from None
                raise InputError(f"cannot listen on {e.host} port {port} ({err.strerror or err}): choose another "
                                 f"--host or {option}") from None


class _Stop(Exception):
    """SIGTERM: stop the server as Ctrl-C would."""


@click.command()
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
              help="An exported graph bundle. Default: the bundled ShapesWorld model.")
@_repo_options
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address Triton listens on (HTTP, gRPC, metrics). 0.0.0.0 opens it to the network.")
@click.option("--http-port", type=_PORT, default=8000, show_default=True)
@click.option("--grpc-port", type=_PORT, default=8001, show_default=True)
@click.option("--metrics-port", type=_PORT, default=8002, show_default=True)
@click.option("--repo", "repo_dir", type=click.Path(path_type=Path), default=None,
              help="Write the model repository here and keep it. Default: a temporary folder, removed on exit.")
@click.option("--ready-timeout", type=FiniteFloat(min=0, min_open=True), default=180.0, show_default=True,
              help="Seconds to wait for every model instance to load.")
def serve(model_dir, backend, instances, gpus, max_batch, queue_delay_us, threads, host, http_port, grpc_port, metrics_port,
          repo_dir, ready_timeout):
    """Serve the model on Triton Inference Server (HTTP, gRPC) until Ctrl-C or SIGTERM.

    \b
    Writes a model repository (see `unifork-rt repo`) and runs the tritonserver of
    nvidia-pytriton on it: pip install 'unifork-rt[serve]'. Models caption (dynamic
    batching), caption_stream (one response per token, gRPC streaming) and draw
    (different prompts in one batch); tensor names in docs/SERVING.md.
    """
    from .repo import write_repository
    from .triton import Endpoints, TritonServer, find_triton

    bundle = str(model_dir.resolve()) if model_dir is not None else ""
    settings = _settings(bundle, backend, instances, gpus, max_batch, queue_delay_us, threads)
    endpoints = Endpoints(host, http_port, grpc_port, metrics_port)
    check_endpoints(endpoints)  # else Triton fails to bind, or `ready` reports the server already there
    find_triton()  # a missing install fails before anything is written
    work = Path(tempfile.mkdtemp(prefix="unifork-serve-"))  # backends/, triton.log, and the repo by default

    def on_term(signum, frame):
        raise _Stop()

    previous = signal.signal(signal.SIGTERM, on_term)
    server, status, stopped, failed_log = None, None, False, ""
    try:
        repo_path = write_repository(repo_dir if repo_dir is not None else work / "repo", settings, model_dir)
        server = TritonServer(repo_path, endpoints, work)
        server.start()
        click.echo(f"starting Triton on {repo_path} (log: {server.log_path})", err=True)
        server.wait_ready(ready_timeout)
        click.echo(f"ready: http {endpoints.http}  grpc {endpoints.grpc}  models caption, caption_stream, draw "
                   "(Ctrl-C stops)", err=True)
        server.watch(lambda line: click.echo(line, err=True))  # until Ctrl-C (KeyboardInterrupt) or SIGTERM
    except (KeyboardInterrupt, _Stop):
        stopped = True
    finally:
        if server is not None:
            status = server.stop()
            failed_log = server.log_tail() if not stopped else ""
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(work, ignore_errors=True)
    if not stopped:
        from .triton import ServerError

        raise ServerError(f"tritonserver stopped on its own with status {status}; its log ended:\n{failed_log}")
    click.echo(f"stopped (tritonserver exit status {status})", err=True)

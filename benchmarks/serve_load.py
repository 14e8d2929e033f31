"""Load test: C concurrent clients against `unifork-rt serve` (Triton, dynamic batching) for a
bounded time, against sequential calls of the runtime in one process, measured in one run.

    python -m unifork_rt.benchmarks.serve_load [--model BUNDLE] [--seconds 10] [--rounds 3]
        [--concurrency 8] [--protocol http|grpc] [--max-batch 8] [--instances 1] [--threads 0] [--out DIR]

Each round runs four phases of `--seconds` (and at most --max-requests requests each), after
one warm-up request per client:
  1. sequential captions: rt.caption([image]) one image at a time, in this process
  2. served captions: --concurrency clients, each sending one image per request
  3. sequential draws: rt.draw([prompt], seed) for 4 different prompts in turn
  4. served draws: one client per prompt (4), each sending its prompt over and over
The rounds alternate sequential and served phases, so that other load on a shared machine
falls on both sides alike. Throughput is completed requests per second; latency is per
request as a client sees it. The server runs on 127.0.0.1 only and is stopped at the end.
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from pathlib import Path

import click
import numpy as np

DRAW_PROMPTS = ["a red circle", "three blue squares", "a triangle left of a circle",
                "a orange triangle below a square"]


def summary(latencies: list[float], seconds: float) -> dict:
    lat = np.array(latencies) * 1000
    return {"requests": len(latencies), "seconds": round(seconds, 2),
            "throughput_rps": round(len(latencies) / seconds, 2) if seconds > 0 else 0.0,
            **{f"p{q}_ms": round(float(np.percentile(lat, q)), 1) if len(lat) else None for q in (50, 95, 99)}}


class Phase:
    """Latencies and busy time of one kind of load, accumulated over the rounds."""

    def __init__(self):
        self.latencies: list[float] = []
        self.seconds = 0.0
        self.cpu_seconds = 0.0  # CPU time of every process that served the phase (a shared machine's
        self.errors: list[str] = []  # other load hardly changes it, unlike wall time)

    def result(self, **extra) -> dict:
        n = len(self.latencies)
        return {**summary(self.latencies, self.seconds), "cpu_ms_per_request": round(1000 * self.cpu_seconds / n, 2)
                if n else None, "errors": len(self.errors), "first_errors": self.errors[:3], **extra}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (all their threads), from /proc."""
    import os

    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(f[11]) + int(f[12])) / tick
    return total


def sequential(phase: Phase, call, items: list, seconds: float, max_requests: int) -> None:
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(max_requests):
        if time.perf_counter() - t0 >= seconds:
            break
        t = time.perf_counter()
        call(items[i % len(items)])
        phase.latencies.append(time.perf_counter() - t)
    phase.seconds += time.perf_counter() - t0
    phase.cpu_seconds += time.process_time() - c0


def concurrent(phase: Phase, make_client, clients: int, call, items: list, seconds: float,
               max_requests: int, server_pids) -> None:
    """Client i sends items[i % len(items)] until the deadline, each in its own thread with its own
    connection (made before the clock starts: the HTTP client cannot change threads); errors are counted."""
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def work(i):
        with make_client() as client:
            call(client, items[i % len(items)])  # warm: connected, and the server's first batches ran
            start.wait(timeout=120)
            for _ in range(max_requests):
                if time.perf_counter() >= deadline[0]:
                    return
                t = time.perf_counter()
                try:
                    call(client, items[i % len(items)])
                except Exception as e:  # noqa: BLE001 - counted and reported; the load goes on
                    with lock:
                        phase.errors.append(str(e)[:200])
                    continue
                with lock:
                    phase.latencies.append(time.perf_counter() - t)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = float("inf")
    start.wait(timeout=120)
    pids = server_pids()
    c0, s0, t0 = time.process_time(), cpu_seconds(pids), time.perf_counter()
    deadline[0] = t0 + seconds
    for t in threads:
        t.join(timeout=seconds + 300)
    phase.seconds += time.perf_counter() - t0
    phase.cpu_seconds += time.process_time() - c0 + cpu_seconds(pids) - s0  # clients + server


def batch_stats(http: str, model: str) -> dict:
    """Triton's own count of requests and executions: how full its batches were."""
    import urllib.request

    with urllib.request.urlopen(f"http://{http}/v2/models/{model}/stats", timeout=10) as r:
        st = json.loads(r.read())["model_stats"][0]
    inferences, executions = int(st["inference_count"]), int(st["execution_count"])
    return {"requests": inferences, "executions": executions,
            "mean_batch": round(inferences / executions, 2) if executions else None}


def _free_ports(k: int) -> list[int]:
    socks = [socket.socket() for _ in range(k)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run(model: Path | None, seconds: float, rounds: int, concurrency: int, protocol: str, max_batch: int,
        max_requests: int, instances: int = 1, threads: int = 0, queue_delay_us: int = 5000) -> dict:
    """Both servers of the comparison in one run: the rounds alternate sequential and served phases,
    so that a change in the machine's other load falls on both sides alike."""
    import os

    from ..benchmarks.measure import busy_processes, machine_info
    from ..data.shapes_world import held_out_scenes, render_pil
    from ..runtime.images import decode_image, png_bytes
    from ..runtime.pipeline import UniForkRuntime
    from ..serve.client import ServeClient
    from ..serve.repo import RepoSettings, write_repository
    from ..serve.triton import Endpoints, TritonServer

    images = [png_bytes(np.asarray(render_pil(s))) for s in held_out_scenes(16, seed=0)]
    results = {"machine": machine_info(), "busy_before": busy_processes(),
               "settings": {"seconds_per_phase_and_round": seconds, "rounds": rounds, "concurrency": concurrency,
                            "protocol": protocol, "max_batch": max_batch, "instances": instances,
                            "threads": threads, "queue_delay_us": queue_delay_us, "draw_prompts": DRAW_PROMPTS}}
    phases = {k: Phase() for k in ("sequential_caption", "served_caption", "sequential_draw", "served_draw")}
    seeds = iter(range(10**9))
    with tempfile.TemporaryDirectory(prefix="unifork-load-") as tmp, UniForkRuntime(model) as rt:
        http, grpc, metrics = _free_ports(3)
        ends = Endpoints("127.0.0.1", http, grpc, metrics)
        repo = write_repository(Path(tmp) / "repo", RepoSettings(bundle=str(model.resolve()) if model else "",
                                                                 max_batch=max_batch, instances=instances,
                                                                 threads=threads, queue_delay_us=queue_delay_us),
                                   model)
        url = ends.http if protocol == "http" else ends.grpc
        size = rt.cfg.image.image_size
        with TritonServer(repo, ends, Path(tmp)) as server:
            def pids():
                return [server.proc.pid] + [p for ps in server.instances().values() for p in ps]

            def client():
                return ServeClient(url, protocol)

            def seq_caption(b):
                return rt.caption([decode_image(b, size)])

            def seq_draw(p):
                return rt.draw([p], seed=next(seeds))

            def served_caption(c, b):
                return c.caption([b])

            def served_draw(c, p):
                return c.draw([p], seed=next(seeds))

            for b, p in zip(images, DRAW_PROMPTS):  # warm-up: sessions and allocations
                seq_caption(b)
                seq_draw(p)
            for _ in range(rounds):
                sequential(phases["sequential_caption"], seq_caption, images, seconds, max_requests)
                concurrent(phases["served_caption"], client, concurrency, served_caption, images, seconds,
                           max_requests, pids)
                sequential(phases["sequential_draw"], seq_draw, DRAW_PROMPTS, seconds, max_requests)
                concurrent(phases["served_draw"], client, len(DRAW_PROMPTS), served_draw, DRAW_PROMPTS, seconds,
                           max_requests, pids)
            results["batches"] = {m: batch_stats(ends.http, m) for m in ("caption", "draw")}
    for name, phase in phases.items():
        results[name] = phase.result()
    results["busy_after"] = busy_processes()
    results["load_average_1m_after"] = os.getloadavg()[0]
    for task in ("caption", "draw"):
        base = results[f"sequential_{task}"]["throughput_rps"]
        results[f"{task}_throughput_ratio"] = round(results[f"served_{task}"]["throughput_rps"] / base, 2) if base else None
    return results


def markdown(r: dict) -> str:
    m, s = r["machine"], r["settings"]
    rows = [("captions, sequential runtime calls (1 image per call)", r["sequential_caption"], "1.00×"),
            (f"captions, served, {s['concurrency']} concurrent clients ({s['protocol']})", r["served_caption"],
             f"**{r['caption_throughput_ratio']:.2f}×**"),
            (f"draws, sequential runtime calls ({len(s['draw_prompts'])} prompts in turn)", r["sequential_draw"],
             "1.00×"),
            (f"draws, served, {len(s['draw_prompts'])} clients with different prompts ({s['protocol']})",
             r["served_draw"], f"**{r['draw_throughput_ratio']:.2f}×**")]
    out = ["| | requests | req/s | vs sequential | p50 ms | p95 ms | p99 ms | CPU ms / request |",
           "|---|---|---|---|---|---|---|---|"]
    for name, x, ratio in rows:
        out.append(f"| {name} | {x['requests']} | {x['throughput_rps']:.2f} | {ratio} | {x['p50_ms']} | "
                   f"{x['p95_ms']} | {x['p99_ms']} | {x['cpu_ms_per_request']} |")
    b = r.get("batches", {})
    out.append("")
    out.append("CPU ms / request: CPU time of the runtime's process (sequential), or of Triton, its model "
               "instances and the client threads (served), per completed request.")
    out.append(f"Mean batch Triton formed: captions {b.get('caption', {}).get('mean_batch')}, draws "
               f"{b.get('draw', {}).get('mean_batch')} requests per execution (warm-up included).")
    out.append(f"{m['cpu']}, {m['cores']} cores, {m.get('mem_total_gb')} GB; {s['rounds']} rounds of "
               f"{s['seconds_per_phase_and_round']:.0f} s per phase, alternating; "
               f"Triton max batch {s['max_batch']}, {s['instances']} instance(s) per model, "
               f"{s['threads'] or 'default'} ONNX Runtime threads per instance; load average (1 min) "
               f"{m['load_average_1m']:.2f} before, {r['load_average_1m_after']:.2f} after.")
    return "\n".join(out) + "\n"


@click.command()
@click.option("--model", type=click.Path(path_type=Path), default=None, help="A graph bundle (default: bundled).")
@click.option("--seconds", type=float, default=10.0, show_default=True, help="Length of each phase in each round.")
@click.option("--rounds", type=int, default=3, show_default=True,
              help="Rounds of the four phases, alternating sequential and served.")
@click.option("--concurrency", type=int, default=8, show_default=True, help="Concurrent caption clients.")
@click.option("--protocol", type=click.Choice(["http", "grpc"]), default="http", show_default=True)
@click.option("--max-batch", type=int, default=8, show_default=True, help="Triton's dynamic batch limit.")
@click.option("--queue-delay-us", type=int, default=5000, show_default=True,
              help="How long Triton lets a request wait for batch-mates.")
@click.option("--instances", type=int, default=1, show_default=True, help="Model instances per model.")
@click.option("--threads", type=int, default=0, show_default=True,
              help="ONNX Runtime threads per served instance (0 = default). The sequential runs use the default.")
@click.option("--max-requests", type=int, default=100_000, show_default=True,
              help="Upper bound on requests per phase and round (per client when served).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("serve_load"), show_default=True,
              help="Folder for serve_load.json and serve_load.md.")
def main(model, seconds, rounds, concurrency, protocol, max_batch, queue_delay_us, instances, threads, max_requests,
         out):
    """Served (Triton, dynamic batching) vs sequential runtime calls: throughput and latency."""
    if not 0 < seconds <= 600:
        raise click.BadParameter("must be in (0, 600]", param_hint="--seconds")
    if not 1 <= rounds <= 20:
        raise click.BadParameter("must be in [1, 20]", param_hint="--rounds")
    if not 1 <= concurrency <= 64:
        raise click.BadParameter("must be in [1, 64]", param_hint="--concurrency")
    r = run(model, seconds, rounds, concurrency, protocol, max_batch, max_requests, instances, threads, queue_delay_us)
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve_load.json").write_text(json.dumps(r, indent=1) + "\n")
    md = markdown(r)
    (out / "serve_load.md").write_text(md)
    click.echo(md, nl=False)
    click.echo(f"wrote {out / 'serve_load.json'} and {out / 'serve_load.md'}")


if __name__ == "__main__":
    main()

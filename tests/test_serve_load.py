"""The load test's own machinery, without a server: bounded loops, counting, the report."""

from __future__ import annotations

import os
import time

from unifork_rt.benchmarks import serve_load as sl


class FakeClient:
    def __init__(self, fail_every=0):
        self.calls, self.fail_every = 0, fail_every

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def call(self, item):
        self.calls += 1
        time.sleep(0.002)
        if self.fail_every and self.calls % self.fail_every == 0:
            raise RuntimeError("bad request")


def test_concurrent_phase_is_bounded_and_counts_errors():
    phase = sl.Phase()
    t0 = time.perf_counter()
    sl.concurrent(phase, lambda: FakeClient(fail_every=5), 4, lambda c, item: c.call(item), ["a", "b"], 0.3,
                  max_requests=10**6, server_pids=lambda: [os.getpid()])
    assert time.perf_counter() - t0 < 30
    r = phase.result()
    assert r["requests"] > 0 and r["errors"] > 0 and r["first_errors"][0] == "bad request"
    assert r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"]
    capped = sl.Phase()  # and by count: at most max_requests per client, however long the phase
    sl.concurrent(capped, FakeClient, 3, lambda c, item: c.call(item), ["a"], 60.0, max_requests=2,
                  server_pids=lambda: [])
    assert len(capped.latencies) == 6 and capped.seconds < 30


def test_sequential_phase_is_bounded_by_count_and_time():
    phase = sl.Phase()
    sl.sequential(phase, lambda item: time.sleep(0.001), ["a"], 60.0, max_requests=7)
    assert len(phase.latencies) == 7
    sl.sequential(phase, lambda item: time.sleep(0.001), ["a"], 0.05, max_requests=10**6)
    assert 7 < len(phase.latencies) < 10**6 and phase.cpu_seconds >= 0


def test_markdown_reports_the_ratios_and_the_machine():
    def phase(rps):
        return {"requests": 10, "throughput_rps": rps, "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0,
                "cpu_ms_per_request": 4.0}

    r = {"machine": {"cpu": "CPU X", "cores": 2, "mem_total_gb": 24, "load_average_1m": 1.5},
         "settings": {"concurrency": 8, "protocol": "http", "draw_prompts": sl.DRAW_PROMPTS, "rounds": 3,
                      "seconds_per_phase_and_round": 10, "max_batch": 8, "instances": 1, "threads": 0},
         "sequential_caption": phase(10.0), "served_caption": phase(31.0), "sequential_draw": phase(1.0),
         "served_draw": phase(2.5), "caption_throughput_ratio": 3.1, "draw_throughput_ratio": 2.5,
         "batches": {"caption": {"mean_batch": 7.5}, "draw": {"mean_batch": 4.0}}, "load_average_1m_after": 2.0}
    md = sl.markdown(r)
    assert "**3.10×**" in md and "**2.50×**" in md and "CPU X, 2 cores" in md and "captions 7.5" in md

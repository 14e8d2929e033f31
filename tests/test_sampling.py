"""The sampler: the same tokens as a whole-vocabulary reference, and the right distribution, on both of
its paths (numpy, and at temperature 1 the C rows of kernels/sample_kernels.c); the C path against the
numpy one token for token."""

from __future__ import annotations

import numpy as np
import pytest

from unifork_rt.runtime import sampling
from unifork_rt.runtime.sampling import Sampling, sample


@pytest.fixture(params=["native", "python"])
def path(request, monkeypatch):
    """Each test that takes it runs once on the C sampler (temperature 1 rows) and once on numpy alone."""
    if request.param == "python":
        monkeypatch.setenv("UNIFORK_RT_SAMPLER", "0")
    else:
        monkeypatch.delenv("UNIFORK_RT_SAMPLER", raising=False)
        if sampling.native() is None:
            pytest.skip("no kernel library on this machine (no C compiler): the numpy path only")
    return request.param


class Fixed:
    """A generator whose every uniform draw is U: to put u at 0, 1 or exactly on a running sum."""

    def __init__(self, u):
        self.u = u

    def random(self, shape):
        return np.full(shape, self.u)


def both_paths(monkeypatch, logits, s, rng_for):
    """(numpy path's tokens, default path's tokens) for the same logits; rng_for() makes each path's generator."""
    monkeypatch.setenv("UNIFORK_RT_SAMPLER", "0")
    try:
        want = sample(logits, s, rng_for())
    finally:
        monkeypatch.delenv("UNIFORK_RT_SAMPLER")
    return want, sample(logits, s, rng_for())


def whole_vocab_sample(logits: np.ndarray, s: Sampling, rng: np.random.Generator) -> np.ndarray:
    """The sampler as it was until 2026-12-03, kept as the spec: masks and softmaxes the whole
    vocabulary, sorts all of it for top-p, and counts the cumulative mass below one uniform per row."""
    if s.temperature == 0:
        return np.argmax(logits, axis=-1).astype(np.int64)
    x = logits.astype(np.float64) / s.temperature
    if 0 < s.top_k < x.shape[-1]:
        kth = np.partition(x, -s.top_k, axis=-1)[:, -s.top_k][:, None]
        x = np.where(x < kth, -np.inf, x)
    x = x - x.max(-1, keepdims=True)
    p = np.exp(x)
    p /= p.sum(-1, keepdims=True)
    if s.top_p < 1:
        order = np.argsort(-p, axis=-1, kind="stable")
        sorted_p = np.take_along_axis(p, order, -1)
        cum = np.cumsum(sorted_p, -1)
        drop_sorted = (cum - sorted_p) >= s.top_p
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, -1)
        p = np.where(drop, 0.0, p)
        p /= p.sum(-1, keepdims=True)
    u = rng.random((p.shape[0], 1))
    idx = (np.cumsum(p, -1) < u).sum(-1)
    return np.minimum(idx, p.shape[-1] - 1).astype(np.int64)


SETTINGS = [Sampling(1.0), Sampling(0.7), Sampling(1.0, top_k=900), Sampling(1.0, top_k=900, top_p=0.96),
            Sampling(1.3, top_k=5, top_p=0.5), Sampling(1.0, top_p=0.9), Sampling(0.5, top_k=1),
            Sampling(1.0, top_k=16384), Sampling(1.0, top_k=50, top_p=0.01), Sampling(0.0, top_k=9)]


@pytest.mark.parametrize("s", SETTINGS, ids=str)
def test_same_tokens_as_the_whole_vocabulary_sampler(s, path):
    """Same logits, same seed: the same token in every row. Logits are rounded to a coarse grid in
    half of the trials, so that ties straddle the k-th value and the top-p cut."""
    changed = 0
    for trial in range(40):
        g = np.random.default_rng(trial)
        B, V = int(g.integers(1, 9)), int(g.choice([7, 300, 16384]))
        logits = (g.standard_normal((B, V)) * g.uniform(0.5, 8)).astype(np.float32)
        if trial % 2:
            logits = np.round(logits)  # many equal logits
        want = whole_vocab_sample(logits, s, np.random.default_rng(1000 + trial))
        got = sample(logits, s, np.random.default_rng(1000 + trial))
        assert got.dtype == np.int64 and got.shape == (B,)
        changed += int((got != want).sum())
    print(f"{s} ({path}): 40 batches, rows that differ from the whole-vocabulary sampler: {changed}")
    assert changed == 0


def test_draws_follow_the_truncated_distribution(path):
    """An implementation-free check: frequencies over 40000 rows against the distribution the
    settings define, worked out by hand for these logits (a token outside the kept set is a failure)."""
    logits = np.log(np.array([[0.05, 0.30, 0.10, 0.25, 0.20, 0.10]]))
    # top_k 4 keeps 0.30, 0.25, 0.20 and both 0.10 (a tie at the 4th value); top_p 0.7 then keeps the
    # prefix 0.30, 0.25, 0.20 (mass before 0.20 is 0.55 < 0.7; before the first 0.10 it is 0.75 >= 0.7)
    expected = np.array([0, 0.30, 0, 0.25, 0.20, 0]) / 0.75
    rows = 40000
    toks = sample(np.repeat(logits, rows, 0), Sampling(1.0, top_k=4, top_p=0.7), np.random.default_rng(7))
    freq = np.bincount(toks, minlength=6) / rows
    sigma = np.sqrt(expected * (1 - expected) / rows)
    print("frequencies", np.round(freq, 4), "expected", np.round(expected, 4))
    assert set(np.unique(toks)) == {1, 3, 4}
    assert np.all(np.abs(freq - expected) <= 5 * sigma + 1e-12)
    # top_k alone keeps the tie: both 0.10 tokens are drawn
    toks = sample(np.repeat(logits, rows, 0), Sampling(1.0, top_k=4), np.random.default_rng(8))
    expected = np.array([0, 0.30, 0.10, 0.25, 0.20, 0.10]) / 0.95
    freq = np.bincount(toks, minlength=6) / rows
    assert np.all(np.abs(freq - expected) <= 5 * np.sqrt(expected * (1 - expected) / rows) + 1e-12)


def test_never_a_token_outside_the_kept_set(path):
    """A uniform of 0 or one above the kept mass (rounding) picks a kept token, not id 0 or the last id."""

    logits = np.full((1, 10), -5.0, dtype=np.float32)
    logits[0, 3], logits[0, 6] = 4.0, 3.0
    for u in (0.0, 1.0 - 1e-17, 1.0):
        tok = sample(logits, Sampling(1.0, top_k=2), Fixed(u))
        assert tok[0] in (3, 6), (u, tok)
    assert sample(logits, Sampling(1.0, top_k=2), Fixed(0.0))[0] == 3
    assert sample(logits, Sampling(1.0, top_k=2), Fixed(1.0))[0] == 6


def test_top_entries_is_exact():
    """The sampled cut of top_entries against a full sort: rows of 2 to 20000 entries, every k,
    many ties (rounded rows, constant rows), the cut's fallback included."""
    from unifork_rt.runtime.sampling import top_entries

    fallbacks = 0
    for trial in range(600):
        g = np.random.default_rng(trial)
        V = int(g.integers(2, 20000))
        k = int(g.integers(1, V))
        row = (g.standard_normal(V) * g.uniform(0.1, 10)).astype(np.float32)
        if trial % 3 == 0:
            row = np.round(row)
        if trial % 7 == 0:
            row[:] = 1.0
        ids, vals, kth = top_entries(row, k)
        want_kth = np.sort(row)[V - k]
        want = np.flatnonzero(row >= want_kth)
        assert kth == want_kth and np.array_equal(ids, want) and np.array_equal(vals, row[want]), (trial, V, k)
        fallbacks += (k // 8) * 3 // 2 + 8 >= len(row[::8])
    print(f"600 rows exact; {fallbacks} of them with k too large for the sampled cut (sorted whole)")
    assert 0 < fallbacks < 600


def test_c_sampler_picks_the_numpy_paths_tokens(monkeypatch):
    """The C rows against sampling.py's numpy path, same logits and seed: 1 to 5 rows of 2 to 16384 logits,
    float32 and float16; normal, coarse (many ties at the k-th value and in p), constant rows (top-p cuts
    at exact sums such as 2/4 of the mass), one dominant logit, a wide range; k from 1 to beyond V; top_p
    from 1e-6 to 1; u at 0 and just below 1. Not one token may differ."""
    if sampling.native() is None:
        pytest.skip("no kernel library on this machine (no C compiler)")

    g = np.random.default_rng(0)
    rows = differ = 0
    for trial in range(900):
        V = int(g.choice([2, 3, 7, 16, 100, 1000, 16384]))
        B = int(g.integers(1, 6))
        kind = trial % 6
        x = g.standard_normal((B, V))
        x = [x * 3, np.round(x * 2), np.zeros((B, V)), x * 30, np.round(x, 1), x][kind]
        if kind == 5:
            x[:, int(g.integers(V))] = 40.0  # one logit holds nearly all the mass
        x = x.astype(np.float16 if trial % 5 == 0 else np.float32)
        k = int(g.choice([0, 1, 2, max(1, V // 3), V - 1, V, V + 5, 900]))
        s = Sampling(1.0, k, float(g.choice([1.0, 0.96, 0.5, 0.25, 0.75, 1e-6])))
        if trial % 9 == 0:
            u = float(g.choice([0.0, 1.0 - 1e-16]))
            want, got = both_paths(monkeypatch, x, s, lambda: Fixed(u))
        else:
            want, got = both_paths(monkeypatch, x, s, lambda: np.random.default_rng(trial))
        assert got.dtype == np.int64 and got.shape == (B,)
        rows += B
        differ += int((got != want).sum())
    print(f"{rows} rows: {differ} tokens differ between the C and numpy samplers")
    assert differ == 0


def test_c_sampler_is_used_at_temperature_1_only(monkeypatch):
    """The C path runs at temperature 1 on float32 / float16 logits; other temperatures and float64
    logits take numpy's (a float64 logit cannot go through the float32 C rows unchanged)."""
    if sampling.native() is None:
        pytest.skip("no kernel library on this machine (no C compiler)")
    calls = []
    real = sampling._sample_native
    monkeypatch.setattr(sampling, "_sample_native", lambda *a: calls.append(a[1].dtype) or real(*a))
    x = np.random.default_rng(0).standard_normal((2, 50))
    sample(x.astype(np.float32), Sampling(1.0, 10, 0.9), np.random.default_rng(0))
    sample(x.astype(np.float16), Sampling(1.0, 10), np.random.default_rng(0))
    sample(x.astype(np.float32), Sampling(0.7, 10), np.random.default_rng(0))
    sample(x, Sampling(1.0, 10), np.random.default_rng(0))
    assert calls == [np.float32, np.float16]
    monkeypatch.setenv("UNIFORK_RT_SAMPLER", "0")
    sample(x.astype(np.float32), Sampling(1.0, 10), np.random.default_rng(0))
    assert len(calls) == 2


def _numpy_cumulative(row: np.ndarray, s: Sampling) -> tuple[np.ndarray, np.ndarray]:
    """sampling.py's numpy path at temperature 1 up to the draw: the kept ids and the running sums u is
    compared with (so that a test can put u exactly on a boundary)."""
    keep, kept, _ = sampling.top_entries(row, s.top_k) if 0 < s.top_k < row.shape[0] else (
        np.arange(row.shape[0]), row, None)
    x = kept.astype(np.float64)
    p = np.exp(x - x.max())
    p /= p.sum()
    if s.top_p < 1:
        order = np.argsort(-p, kind="stable")
        sorted_p = p[order]
        sel = np.sort(order[(np.cumsum(sorted_p) - sorted_p) < s.top_p])
        keep, p = keep[sel], p[sel]
        p /= p.sum()
    return keep, np.cumsum(p)


def test_c_sampler_agrees_on_exact_boundaries(monkeypatch):
    """u placed exactly on the numpy path's running sums (the token changes there), and top-p cuts between
    two logits one float32 step apart: only the same float64 arithmetic in the same order (NumPy's
    pairwise sums, cumsum - p, the stable order of p) picks the same tokens."""
    if sampling.native() is None:
        pytest.skip("no kernel library on this machine (no C compiler)")

    g = np.random.default_rng(3)
    checked = 0
    # kept sets and top-p survivors beyond one NumPy buffer (8192: ndarray.sum is pairwise per buffer) and
    # the caption vocabulary (151936); flat rows (scale 0.3) keep most of the row through top_p 0.9
    for trial in range(66):
        V = int(g.choice([50, 1000, 8193, 16384, 20000])) if trial < 60 else 151936
        row = (g.standard_normal(V) * (0.3 if trial % 3 == 0 else g.uniform(0.3, 4))).astype(np.float32)
        s = Sampling(1.0, int(g.choice([0, 0, 7, 900])), float(g.choice([1.0, 0.9, 0.96, 0.6])))
        keep, cum = _numpy_cumulative(row, s)
        for j in g.choice(len(cum), size=min(len(cum), 4), replace=False):
            for u in (float(cum[j]), float(np.nextafter(cum[j], 0)), float(np.nextafter(cum[j], 2))):
                want, got = both_paths(monkeypatch, row[None], s, lambda: Fixed(u))
                assert got[0] == want[0], (trial, V, s, j, u, got, want)
                checked += 1
    # logits one float32 step apart, near 0: p differ in float64 but not in float32; the higher p (the
    # larger id) comes first in p's order, and top_p cuts right after it
    a = np.float32(0.1)
    row = np.array([a, np.nextafter(a, np.float32(1))] * 3, np.float32)
    for top_p in (0.1, 0.3, 0.45, 0.55):
        s = Sampling(1.0, 0, top_p)
        for u in (0.0, 0.5, 0.999):
            want, got = both_paths(monkeypatch, row[None], s, lambda: Fixed(u))
            assert got[0] == want[0], (top_p, u)
            checked += 1
    print(f"{checked} draws on exact boundaries agree")


def test_c_sampler_edges_and_shapes(monkeypatch):
    """No rows, an empty vocabulary (numpy's error), misaligned float32 logits, another NumPy buffer size,
    and two threads sampling at once (each has its own buffers): as the numpy path."""
    import threading

    if sampling.native() is None:
        pytest.skip("no kernel library on this machine (no C compiler)")
    s = Sampling(1.0, 50, 0.9)

    assert sample(np.zeros((0, 100), np.float32), s, np.random.default_rng(0)).shape == (0,)
    with pytest.raises(ValueError):
        sample(np.zeros((1, 0), np.float32), s, np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 16384)).astype(np.float32)
    raw = np.zeros(x.nbytes + 1, np.uint8)
    odd = raw[1:].view(np.float32).reshape(x.shape)
    odd[:] = x
    assert odd.ctypes.data % 4
    want, got = both_paths(monkeypatch, odd, s, lambda: np.random.default_rng(2))
    assert np.array_equal(got, want) and np.array_equal(want, both_paths(monkeypatch, x, s, lambda: np.random.default_rng(2))[0])
    old = np.getbufsize()
    try:
        np.setbufsize(4096)
        flat = (np.random.default_rng(3).standard_normal((1, 20000)) * 0.3).astype(np.float32)
        for seed in range(20):
            want, got = both_paths(monkeypatch, flat, Sampling(1.0, 0, 0.9), lambda: np.random.default_rng(seed))
            assert np.array_equal(got, want)
    finally:
        np.setbufsize(old)
    rows = [np.random.default_rng(10 + i).standard_normal((4, 16384)).astype(np.float32) for i in range(8)]
    want = [both_paths(monkeypatch, r, s, lambda: np.random.default_rng(i))[0] for i, r in enumerate(rows)]
    got = [None] * len(rows)

    def work(i):
        for _ in range(20):
            got[i] = sample(rows[i], s, np.random.default_rng(i))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(rows))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(a, b) for a, b in zip(got, want))


def test_c_sampler_stays_n_log_n_on_hostile_rows(monkeypatch):
    """Rows that drive a median-of-3 quickselect or an insertion sort of equal float32 keys to n^2 (an
    organ pipe; nearly constant logits, whose p differ in float64 and not in float32): the C path must stay
    within a few times the numpy path's time (n log n sorts), with the same tokens. Before the fallbacks,
    these took 0.9-5.8 s against numpy's 3-30 ms on this 2-core host. A guard on complexity, not speed."""
    import time

    if sampling.native() is None:
        pytest.skip("no kernel library on this machine (no C compiler)")
    V = 151936
    i = np.arange(V)
    cases = [(np.minimum(i, V - 1 - i) * 1e-3, Sampling(1.0, 50000)),
             (-np.minimum(i, V - 1 - i) * 1e-3, Sampling(1.0, 50000)),
             (np.arange(65536) * 1e-12, Sampling(1.0, 0, 0.9)),
             (np.random.default_rng(0).standard_normal(V) * 1e-9, Sampling(1.0, 0, 0.9))]
    for row, s in cases:
        x = row.astype(np.float32)[None]
        monkeypatch.setenv("UNIFORK_RT_SAMPLER", "0")
        t = time.perf_counter()
        want = sample(x, s, np.random.default_rng(0))
        t_numpy = time.perf_counter() - t
        monkeypatch.delenv("UNIFORK_RT_SAMPLER")
        t = time.perf_counter()
        got = sample(x, s, np.random.default_rng(0))
        t_c = time.perf_counter() - t
        print(f"{s}: numpy {t_numpy * 1e3:.1f} ms, C {t_c * 1e3:.1f} ms")
        assert np.array_equal(got, want)
        assert t_c < 10 * t_numpy + 0.5, (s, t_c, t_numpy)

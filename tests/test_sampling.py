"""The numpy sampler: the same tokens as a whole-vocabulary reference, and the right distribution."""

from __future__ import annotations

import numpy as np
import pytest

from unifork_rt.runtime.sampling import Sampling, sample


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
def test_same_tokens_as_the_whole_vocabulary_sampler(s):
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
    print(f"{s}: 40 batches, rows that differ from the whole-vocabulary sampler: {changed}")
    assert changed == 0


def test_draws_follow_the_truncated_distribution():
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


def test_never_a_token_outside_the_kept_set():
    """A uniform of 0 or one above the kept mass (rounding) picks a kept token, not id 0 or the last id."""

    class Fixed:
        def __init__(self, u):
            self.u = u

        def random(self, shape):
            return np.full(shape, self.u)

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

"""Batched multi-prompt drawing: a request's images do not depend on the requests beside it."""

from __future__ import annotations

import numpy as np
import pytest

from unifork_rt.errors import InputError
from unifork_rt.runtime.pipeline import DrawRequest, DrawSettings, UniForkRuntime


@pytest.fixture(scope="module")
def rt(micro_bundle):
    with UniForkRuntime(micro_bundle) as r:
        yield r


def _requests():
    """Prompts of different lengths (so rows are left-padded), guided and unguided, greedy and sampled."""
    return [
        DrawRequest("a red circle left of a blue square", DrawSettings(cfg_scale=2.0, temperature=1.0, top_k=20,
                                                                       top_p=0.9), n=2, seed=7),
        DrawRequest("two circles", DrawSettings(cfg_scale=1.0, temperature=1.0, top_k=0, top_p=1.0), n=1, seed=3),
        DrawRequest("a green triangle", DrawSettings(cfg_scale=3.0, temperature=0.0), n=3, seed=0),
        DrawRequest("a red circle", DrawSettings(cfg_scale=1.5, temperature=0.5, top_k=900, top_p=0.96), n=1, seed=7),
    ]


def test_each_request_gets_the_codes_it_gets_alone(rt):
    reqs = _requests()
    alone = [rt.draw_codes(q.prompt, q.n, q.settings, q.seed) for q in reqs]
    batched = rt.draw_codes_batch(reqs)
    assert [c.shape for c in batched] == [(q.n, 16, 2) for q in reqs]
    for q, a, b in zip(reqs, alone, batched):
        assert np.array_equal(a, b), f"{q.prompt!r}: batched codes differ from drawing it alone"
    # another order, other batch-mates: the same codes again
    again = rt.draw_codes_batch(reqs[::-1])[::-1]
    assert all(np.array_equal(a, b) for a, b in zip(alone, again))
    # the batch really mixes rows: sampled requests with different seeds differ
    assert not np.array_equal(alone[0][:1], rt.draw_codes(reqs[0].prompt, 1, reqs[0].settings, seed=8))


def test_draw_batch_images_match_draw(rt):
    reqs = _requests()[:2]
    got = rt.draw_batch(reqs)
    for q, images in zip(reqs, got):
        s = q.settings
        want = rt.draw([q.prompt], n=q.n, seed=q.seed, cfg_scale=s.cfg_scale, temperature=s.temperature,
                       top_k=s.top_k, top_p=s.top_p)
        assert len(images) == q.n and all(np.array_equal(a, b) for a, b in zip(want, images))


@pytest.mark.parametrize("bad, message", [  # built in the test: bad settings raise when they are made
    (lambda: DrawRequest("  ", DrawSettings()), "prompt is empty"),
    (lambda: DrawRequest("a red circle", DrawSettings(), n=0), "number of images"),
    (lambda: DrawRequest("a red circle", DrawSettings(cfg_scale=-1.0)), "cfg-scale"),
    (lambda: DrawRequest("a red circle", DrawSettings(temperature=-1.0)), "temperature"),
])
def test_a_bad_request_fails_before_any_work(rt, bad, message, monkeypatch):
    calls = []
    monkeypatch.setattr(rt.backend, "run", lambda *a, **k: calls.append(a) or pytest.fail("graph ran"))
    with pytest.raises(InputError, match=message):
        rt.draw_codes_batch([_requests()[0], bad()])
    assert not calls


def test_no_requests_is_an_error(rt):
    with pytest.raises(InputError, match="no drawing requests"):
        rt.draw_codes_batch([])

"""The hostile battery (benchmarks/hostile.py) against the micro bundle, plus property tests.

Each catalogue case must end with its exit status and message, on one line, with no
traceback; docs/FAILURES.md is the same catalogue run against the shipped bundle.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from unifork_rt.benchmarks import hostile
from unifork_rt.errors import InputError, ModelFolderError, UniforkError
from unifork_rt.runtime import limits
from unifork_rt.runtime.bundle import check_manifest

CASES = hostile.all_cases()
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


@pytest.fixture(scope="module")
def env(micro_bundle, tmp_path_factory):
    e = hostile.Env(micro_bundle, tmp_path_factory.mktemp("hostile"))
    yield e
    e.close()


def test_the_battery_is_large_enough():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)  # names are unique: they are the doc's rows
    assert {c.group for c in CASES} == {"bundle", "options", "output", "files", "threads", "photos"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(env, case):
    result = case.run(env)  # not run_case: a traceback here must fail with its own traceback
    problem = hostile.check(case, result)
    assert problem is None, problem


# --- properties -----------------------------------------------------------------------------------
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
                           | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3),
                           max_leaves=8)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@pytest.fixture(scope="module")
def manifest(micro_bundle):
    m = json.loads((micro_bundle / "manifest.json").read_text())
    return m, sorted(_paths(m), key=str)


@FAST
@given(data=st.data(), value=json_values)
def test_any_manifest_field_replaced_by_any_json_is_refused_or_valid(manifest, micro_bundle, data, value):
    """Any one field (at any depth) replaced by arbitrary JSON: a valid manifest, or one line
    naming the damage; never a TypeError, KeyError or a traceback."""
    m, paths = manifest
    m = json.loads(json.dumps(m))
    path = data.draw(st.sampled_from(paths))
    if not path:
        m = value
    else:
        obj = m
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value
    try:
        check_manifest(m, micro_bundle)
    except ModelFolderError as e:
        assert str(e) and "\n" not in str(e) and "re-export" in str(e)


@FAST
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_manifest_text_is_refused_with_one_line(micro_bundle, tmp_path_factory, text):
    import shutil

    from unifork_rt.runtime.bundle import load_bundle

    b = tmp_path_factory.mktemp("m") / "b"
    shutil.copytree(micro_bundle, b)
    (b / "manifest.json").write_text(text, encoding="utf-8", errors="surrogateescape")
    with pytest.raises(UniforkError) as e:
        load_bundle(b, verify=False)
    assert "\n" not in str(e.value)


@FAST
@given(seed=st.integers(-2**80, 2**80) | st.floats() | st.booleans() | st.text(max_size=3))
def test_seeds_are_integers_in_int64(seed):
    ok = isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= 2**63 - 1
    if ok:
        assert limits.seed(seed) == seed
        assert 0 <= limits.seed_for(seed, 5) <= limits.MAX_SEED
    else:
        with pytest.raises(InputError):
            limits.seed(seed)


@FAST
@given(value=st.floats() | st.integers(-10**400, 10**400) | st.booleans() | st.none() | st.text(max_size=3))
def test_sampling_values_are_finite_bounded_numbers(value):
    for check in (limits.cfg_scale, limits.temperature, limits.top_p, limits.top_k):
        try:
            got = check(value)
        except InputError as e:
            assert "\n" not in str(e)
            continue
        assert math.isfinite(got) and not isinstance(value, (bool, str, type(None)))


@FAST
@given(n=st.integers(1, 2**62), limit=st.integers(1, 2**40))
def test_draw_memory_estimate_grows_with_n_and_refuses_beyond_the_limit(env, n, limit):
    rt = env.rt()
    from unifork_rt.runtime.pipeline import DrawSettings

    rt.memory_limit = limit
    try:
        try:
            rt.check_n(n, DrawSettings(cfg_scale=2.0))
        except InputError as e:
            assert "needs about" in str(e) and "--n" in str(e)
            with pytest.raises(InputError):
                rt.check_n(n + 1, DrawSettings(cfg_scale=2.0))  # monotone: more never fits once less did not
    finally:
        rt.memory_limit = None


@FAST
@given(array=st.sampled_from([np.nan, np.inf, -np.inf, 1.0001, -1.0001, 255.0, 0.5, -1.0, 1.0]),
       where=st.integers(0, 3 * 64 * 64 - 1))
def test_image_arrays_must_be_finite_and_in_range(env, array, where):
    rt = env.rt()
    a = np.zeros(3 * 64 * 64, np.float32)
    a[where] = array
    a = a.reshape(3, 64, 64)
    ok = np.isfinite(array) and -1 <= array <= 1
    if ok:
        assert rt.encode_images([a]).shape[0] == 1
    else:
        with pytest.raises(InputError):
            rt.encode_images([a])


@FAST
@given(name=st.text(min_size=1, max_size=300).filter(lambda s: "/" not in s and "\x00" not in s and s not in (".", "..")))
def test_any_output_name_is_written_or_refused_before_drawing(env, name):
    from unifork_rt.cli import _check_targets, _png_paths

    d = env.dir()
    path = d / (name + ".png")
    try:
        targets = _png_paths(path, ["a"], 1)
        _check_targets(targets, overwrite=False)
    except UniforkError as e:
        assert "\n" not in str(e)
        assert len(name.encode("utf-8", "surrogateescape")) + 4 > 255
        return
    from unifork_rt.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_bytes(b"x")
    assert path.read_bytes() == b"x" and [p.name for p in d.iterdir()] == [path.name]


@FAST
@given(prompts=st.lists(st.text(alphabet="aA !bc_", min_size=1, max_size=6), min_size=1, max_size=5),
       n=st.integers(1, 3))
def test_default_names_are_unique(prompts, n):
    from unifork_rt.cli import _png_paths

    names = [p for p, _ in _png_paths(None, prompts, n)]
    assert len(names) == len(set(names)) == len(prompts) * n

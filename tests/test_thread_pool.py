"""One intra-op thread pool for a process's CPU sessions (runtime/ort_backend.py, POOL_ENV): the choice and its
errors, the same outputs as a pool per session (our MatMulNBits kernels included), and who gets it: the
`unifork-rt` process, not a test runner's process. The pool is process-wide (ONNX Runtime then refuses any
session asking for its own), so everything that makes one runs in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from unifork_rt.errors import InputError  # noqa: E402
from unifork_rt.runtime import ort_backend  # noqa: E402
from unifork_rt.runtime.ort_backend import POOL_ENV, pool_choice  # noqa: E402


def test_pool_choice_env_wins_and_bad_values_are_named(monkeypatch):
    monkeypatch.delenv(POOL_ENV, raising=False)
    assert pool_choice(None) == "session" and pool_choice("shared") == "shared"
    monkeypatch.setenv(POOL_ENV, "session")
    assert pool_choice("shared") == "session"
    monkeypatch.setenv(POOL_ENV, "Shared ")
    assert pool_choice(None) == "shared"
    monkeypatch.setenv(POOL_ENV, "global")
    with pytest.raises(InputError, match=f"{POOL_ENV}=global.*session, shared"):
        pool_choice(None)
    with pytest.raises(InputError, match="pool='one'"):  # a wrong argument is wrong whatever the environment says
        pool_choice("one")


def _run(code: str, env: dict | None = None) -> str:
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, **(env or {})})
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


RUN = """
    import json, sys
    import numpy as np
    from unifork_rt.errors import InputError
    from unifork_rt.runtime import ort_backend
    from unifork_rt.runtime.pipeline import UniForkRuntime
    bundle, pool = {bundle!r}, {pool!r}
    early = UniForkRuntime(bundle, threads=2)  # loaded (no session made yet) before the pool is shared
    with UniForkRuntime(bundle, threads=2, pool=pool) as rt:
        size = rt.bundle.config.image.image_size
        image = np.random.default_rng(0).uniform(-1, 1, (3, size, size)).astype(np.float32)
        caption = rt.caption_ids([image], max_new_tokens=6)
        codes = rt.draw_codes("a red circle", n=2, seed=3)
        out = {{"shared": ort_backend.shares_pool(), "caption": caption, "codes": np.asarray(codes).tolist(),
                "qmatmul": rt.backend.qmatmul is not None, "early": early.caption_ids([image], max_new_tokens=6)}}
        if pool == "shared":
            try:  # once shared, every backend joins the pool: another thread count is refused
                UniForkRuntime(bundle, threads=1)
                out["other_size"] = "accepted"
            except InputError as e:
                out["other_size"] = str(e)
    early.close()
    print(json.dumps(out))
"""


def test_shared_pool_gives_the_same_outputs_as_a_pool_per_session(micro_model_dir, tmp_path):
    """An int4 `--graphs ort` bundle (our MatMulNBits kernels run their tasks on whichever pool, GroupQueryAttention
    writes the cache in place): caption tokens and drawn codes are the same with one pool as with a pool per
    session; a backend loaded before the pool was shared makes its sessions in it; a later backend asking
    for another thread count is refused with the way out."""
    from unifork_rt.export.onnx_export import export_bundle
    from unifork_rt.runtime.qmatmul import library_for_sessions

    bundle = export_bundle(micro_model_dir, tmp_path / "int4-ort", precision="int4", variant="ort", progress=False)
    got = {pool: json.loads(_run(RUN.format(bundle=str(bundle), pool=pool), {POOL_ENV: ""}).splitlines()[-1])
           for pool in ("session", "shared")}
    assert got["session"]["shared"] is False and got["shared"]["shared"] is True
    assert got["shared"]["caption"] == got["session"]["caption"]
    assert np.array_equal(got["shared"]["codes"], got["session"]["codes"])
    assert got["shared"]["early"] == got["shared"]["caption"] == got["session"]["early"]
    # our kernels where they build here (the subprocesses see the same compiler and CPU)
    assert got["shared"]["qmatmul"] == got["session"]["qmatmul"] == (library_for_sessions() is not None)
    assert "one thread pool of 2 threads" in got["shared"]["other_size"]
    assert f"{POOL_ENV}=session" in got["shared"]["other_size"]


CLI = """
    import sys
    from PIL import Image
    import numpy as np
    from unifork_rt import cli
    from unifork_rt.runtime import ort_backend
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(sys.argv[1])
    code = cli.run(["caption", sys.argv[1], "--max-new-tokens", "2"])
    print("exit", code, "shared", ort_backend.shares_pool())
"""


def test_the_unifork_rt_process_shares_its_pool_unless_told_not_to(tmp_path):
    """`unifork-rt caption` as a process (cli.run) shares one pool; UNIFORK_RT_ORT_POOL=session keeps a pool per
    session; under a test runner (this process, CliRunner) the pool stays per session, or later sessions made
    here with their own options would be refused."""
    from click.testing import CliRunner

    from unifork_rt.cli import main

    img = tmp_path / "x.png"
    run = ["-c", textwrap.dedent(CLI), str(img)]
    for env, shared in (("", True), ("session", False)):
        res = subprocess.run([sys.executable, *run], capture_output=True, text=True, timeout=300,
                             env={**os.environ, POOL_ENV: env})
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"exit 0 shared {shared}" in res.stdout, res.stdout + res.stderr
    r = CliRunner().invoke(main, ["caption", str(img), "--max-new-tokens", "2"])
    assert r.exit_code == 0, r.output
    assert not ort_backend.shares_pool()

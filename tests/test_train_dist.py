"""Scale-out: the same stage under `torchrun --nproc_per_node 2` (DDP over gloo on CPU).

Each rank reports a checksum of ITS OWN weights after training and a digest of the first
batch it drew: the weights must agree, the data must not. Only rank 0 writes the folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from safetensors import safe_open  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent('''
    import hashlib, json, sys
    from pathlib import Path
    import torch
    from unifork_rt.train import jobs, loop, stages
    from unifork_rt.train.dist import setup, teardown

    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    d = setup()
    first = []
    draw = jobs.YJob.batch

    def spy_batch(self):
        b = draw(self)
        if not first:
            first.append(hashlib.sha256(b[1][1].numpy().tobytes() + b[0][0].numpy().tobytes()).hexdigest())
        return b

    run = loop.run

    def spy_run(job, model, *args, **kwargs):
        result = run(job, model, *args, **kwargs)
        digest = hashlib.sha256()
        for name, t in sorted(model.state_dict().items()):
            digest.update(name.encode() + t.detach().cpu().numpy().tobytes())
        (out / f"rank{d.rank}-{job.__class__.__name__}.json").write_text(
            json.dumps({"weights": digest.hexdigest(), "first": first[0] if first else None}))
        return result

    jobs.YJob.batch, loop.run = spy_batch, spy_run
    # the tokenizer stage too: its dead-code restarts must leave every rank the same codebook
    t = stages.default_settings("tokenizer", steps=3, batch_size=4, restart_every=2, eval_every=0, eval_n=0)
    stages.run_stage(t, out / "tokenizer", preset="micro")
    s = stages.default_settings("2", steps=3, save_every=2, batch_size=4, und_batch_size=4, eval_n=0, seed=7)
    stages.run_stage(s, out / "s2", init=out / "tokenizer")
    teardown()
''')


def test_torchrun_two_ranks_keep_identical_weights(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1",
           "CUDA_VISIBLE_DEVICES": ""}  # gloo on CPU even on a GPU machine (NCCL wants one GPU per rank)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(tmp_path)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for job in ("VQJob", "YJob"):
        ranks = [json.loads((tmp_path / f"rank{i}-{job}.json").read_text()) for i in (0, 1)]
        assert ranks[0]["weights"] == ranks[1]["weights"], f"DDP ranks diverged in the {job} stage"
    assert ranks[0]["first"] != ranks[1]["first"], "both ranks drew the same batch"
    # only rank 0 wrote: one log row per step, one checkpoint holding both ranks' data streams
    s2 = tmp_path / "s2"
    assert len((s2 / "log.jsonl").read_text().splitlines()) == 3
    with safe_open(str(s2 / "checkpoint.safetensors"), "pt") as f:
        meta = json.loads(f.metadata()["train_state"])
    assert meta["world"] == 2 and meta["step"] == 3 and len(meta["ranks"]) == 2
    assert meta["ranks"][0] != meta["ranks"][1]
    assert "process(es)" in r.stdout and r.stdout.count("stage 2 done") == 1


def test_more_processes_than_gpus_is_a_clear_error(monkeypatch):
    from unifork_rt.errors import InputError
    from unifork_rt.train import dist

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(InputError, match="--nproc_per_node 1, or CUDA_VISIBLE_DEVICES="):
        dist.setup()

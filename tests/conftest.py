"""Shared fixtures. Tolerances for parity tests live in one table (TOL)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# max abs difference allowed, by comparison
TOL = {
    "qwen_fp32": 1.5e-5,  # our understanding path vs transformers Qwen2ForCausalLM: ~100x the 1.3e-7 measured
    # ours (PyTorch and ORT fp32) vs tensors from the official UniFork code (test_official.py): its
    # logits are ~8 wide (random tiny model) and the official fp32 sums in another order: measured 3.3e-5
    "official_fp32": 1e-4,
    # each fp32 graph vs its PyTorch entry point (test_export.py, micro, B = 1 and 2, outputs and
    # kv_new): about 100x the largest difference measured here (ORT 1.x CPU), so that a real change
    # in a graph (an op, a mask, a rotary offset) fails while float reordering passes
    "onnx_fp32_trunk": 3e-5,           # measured 2.4e-7
    "onnx_fp32_und_branch": 7e-5,      # measured 7.2e-7 (logits of the x4 head, |logits| ~ 2.4)
    "onnx_fp32_gen_branch": 5e-5,      # measured 4.8e-7
    "onnx_fp32_rq_head": 6e-5,         # measured 6.0e-7 (logits, x4 output)
    "onnx_fp32_connector": 5e-8,       # measured 4.7e-10
    "onnx_fp32_vision_decoder": 2e-6,  # measured 1.9e-8
    "onnx_fp16": 1e-2,  # fp16 graphs (activations ~1): half precision rounding through 2 layers
    # quantized bundles vs PyTorch fp32 (micro, test_export.py), about 2x the worst measured on
    # this machine (ORT 1.32, AVX2/AVX-512 kernels): hidden states / kv_new, and logits (und_branch,
    # rq_head: the test model's lm_head and depth-head output are scaled x4, |logits| ~ 2.4)
    # MatMulInteger, one weight scale per output column, 7-bit weights (reduce_range: no int16
    # saturation on AVX2, so every x86 CPU computes the same integers): measured 1.4e-2 (rq_head
    # kv_new) on AVX-512 VNNI (1.3e-2 with the older one scale per tensor)
    "onnx_int8-dynamic": 2.5e-2,
    "onnx_int8-dynamic_logits": 0.12,  # measured 4.0e-2 (rq_head; 5.9e-2 with one scale per tensor)
    # MatMulNBits int8, blocks of 128 (one per column on micro), int8 activations (accuracy level 4):
    # measured 5.4e-3, logits 3.2e-2 (caption, teacher-forced); with blocks of 32 5.4e-3 and 2.3e-2
    "onnx_int8": 1.5e-2,
    "onnx_int8_logits": 5e-2,
    # MatMulNBits int4, blocks of 128 (on micro's narrow matrices one block per column): measured
    # 8.0e-2 (trunk kv_new), logits 0.33 (rq_head); with blocks of 32 8.0e-2 and 0.26
    "onnx_int4": 0.15,
    "onnx_int4_logits": 0.5,
    "trt_fp32": 1e-4,   # TensorRT engines vs ONNX Runtime (GPU only), strict fp32 (tf32 off)
    "trt_tf32": 5e-3,
    "trt_fp16": 5e-2,
}


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def assert_close(name: str, a, b, tol: float) -> None:
    d = max_diff(a, b)
    print(f"{name}: max abs diff {d:.3e} (tol {tol:.0e})")
    assert d <= tol, f"{name}: max abs diff {d:.3e} > {tol:.0e}"


def outputs_per_task_split(lib, model: bytes, feeds: list[dict]) -> dict:
    """For each task count the kernel library may be told (None: its default, 1, 2, 3, 7, 64), the outputs of
    MODEL on each of FEEDS, concatenated along the rows, from a 2-thread session with LIB registered."""
    import onnxruntime as ort

    from unifork_rt.runtime import qmatmul

    outs = {}
    try:
        for tasks in (None, 1, 2, 3, 7, 64):
            qmatmul.set_session_threads(lib, tasks)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 2
            opts.register_custom_ops_library(str(lib))
            sess = ort.InferenceSession(model, opts)
            outs[tasks] = np.concatenate([sess.run(None, f)[0] for f in feeds], axis=-2)
    finally:
        qmatmul.set_session_threads(lib, None)
    return outs


def compare_backend_graphs(ours, plain, label: str, tol: float = 1e-4) -> set[str]:
    """Run every graph of two loaded OrtBackends of one bundle on the same random feeds (unknown dims 2,
    int64 inputs 0) and assert their outputs agree within TOL (max difference relative to the largest
    output); the graphs compared (generic feeds cannot drive every graph: those are skipped)."""
    rng = np.random.default_rng(0)
    compared = set()
    for name in ours.bundle.graphs:
        s_ours, s_plain = ours.session(name), plain.session(name)
        feeds = {}
        for i in s_ours.get_inputs():
            shape = [d if isinstance(d, int) else 2 for d in i.shape]
            if "int64" in i.type:
                feeds[i.name] = np.zeros(shape, np.int64)
            else:
                feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
        try:
            want = s_plain.run(None, feeds)
        except Exception:  # noqa: BLE001 - feeds this generic cannot drive every graph (positions, caches)
            continue
        got = s_ours.run(None, feeds)
        diff = max(float(np.abs(w - g).max() / (np.abs(w).max() + 1e-12)) for w, g in zip(want, got))
        print(f"{label} {name}: max rel diff, our kernels vs ONNX Runtime's {diff:.2e}")
        assert diff < tol, name
        compared.add(name)
    return compared


def child_floats(script: str, isa: str | None = None, timeout: float = 300) -> list[float]:
    """Run SCRIPT in a fresh Python (UNIFORK_RT_ISA=ISA where given: the kernel library reads the ISA once per
    process), assert it succeeded, and return the floats of its last printed lines, one a line."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, **({"UNIFORK_RT_ISA": isa} if isa else {}))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    return [float(v) for v in r.stdout.strip().splitlines() if v.strip()]


def trace_key(model, name: str, max_seq: int, dtype, file: str) -> str:
    """Everything export/onnx_export.py trace_graph's output depends on: the weights' and (persistent) buffers' bytes,
    the config (the other buffers are made from it), train or eval mode, the graph, max_seq, dtype, the opset, the
    size above which the weights go to FILE.data (PROTOBUF_SAFE_BYTES) and the torch, onnx and onnxscript versions;
    and the file's name (a graph with its weights in FILE.data names that file inside)."""
    import hashlib
    import json

    import onnx
    import onnxscript
    import torch

    from unifork_rt.export import onnx_export

    h = hashlib.sha256(json.dumps([name, file, max_seq, str(dtype), onnx_export.OPSET, onnx_export.PROTOBUF_SAFE_BYTES,
                                   torch.__version__, onnx.__version__, onnxscript.__version__, model.training,
                                   model.cfg.to_dict()], sort_keys=True).encode())
    for key, t in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(scope="session")
def reuse_traced_graphs(tmp_path_factory):
    """torch.onnx's dynamo trace takes seconds a graph even on micro, and the suite exports the same graphs many
    times: every quantized micro bundle starts from the fp32 bundle's float traces, fp16 micro is exported twice.
    Each (weights, config, graph, max_seq, dtype) is traced once a session; later exports copy its files, then
    quantize, rewrite and check them as always. test_export.py::test_a_trace_depends_only_on_its_key checks the
    premise (two traces of one key are the same bytes). micro_model_dir sets it up, so it is on from the first
    export of micro. Yields the unpatched trace_graph."""
    import shutil
    import tempfile

    from unifork_rt.export import onnx_export

    real, store, seen = onnx_export.trace_graph, tmp_path_factory.mktemp("traces"), {}

    def trace_graph(model, name, path, max_seq, dtype):
        path = Path(path)
        key = trace_key(model, name, max_seq, dtype, path.name)
        files = [path, path.with_name(path.name + ".data")]
        for f in files:  # only what this trace writes (or copies) is left beside it
            f.unlink(missing_ok=True)
        if key not in seen:
            real(model, name, path, max_seq, dtype)
            keep = Path(tempfile.mkdtemp(dir=store))
            for f in files:
                if f.exists():
                    shutil.copyfile(f, keep / f.name)
            seen[key] = keep  # only once every file is kept
            return
        for f in files:
            if (seen[key] / f.name).exists():
                shutil.copyfile(seen[key] / f.name, f)

    mp = pytest.MonkeyPatch()
    mp.setattr(onnx_export, "trace_graph", trace_graph)
    yield real
    mp.undo()


@pytest.fixture(scope="session")
def torch_mod():
    return pytest.importorskip("torch")


def train_test_tokenizer(path):
    """The training path's byte-level BPE over ShapesWorld's text, at micro's vocabulary size."""
    from unifork_rt.train.tokenizer import build_text_tokenizer

    build_text_tokenizer(320).save(str(path))
    return path


@pytest.fixture(scope="session")
def micro_model_dir(tmp_path_factory, torch_mod, reuse_traced_graphs):
    """A random micro checkpoint (config.json, model.safetensors, tokenizer.json); exports in the session reuse their
    torch.onnx traces from then on (reuse_traced_graphs)."""
    torch = torch_mod
    from unifork_rt.config import preset
    from unifork_rt.model.checkpoint import save_model
    from unifork_rt.model.unifork import UniFork

    folder = tmp_path_factory.mktemp("micro")
    tok = train_test_tokenizer(folder / "tok.json")
    torch.manual_seed(0)
    model = UniFork(preset("micro"))
    with torch.no_grad():  # widen the random logits a little, so greedy choices are not near-ties
        model.head.out.weight.mul_(4)
        model.embed_tokens.weight.mul_(4)
    return save_model(model, folder / "model", tokenizer=tok)


@pytest.fixture(scope="session")
def micro_bundle(micro_model_dir):
    """The micro checkpoint exported to an fp32 bundle (once per test session)."""
    from unifork_rt.export.onnx_export import export_bundle

    return export_bundle(micro_model_dir, micro_model_dir.parent / "bundle", progress=False)

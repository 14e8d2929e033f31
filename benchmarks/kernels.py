"""How ONNX Runtime's CPU MatMul kernels scale with the number of rows, per weight format.

A decode step multiplies 1 row (caption) or 2 x n rows (a guided draw of n images) by every
weight; a prefill multiplies the prompt's rows. A bandwidth-bound kernel costs about the same at 1
and 8 rows; a compute-bound one grows with them. This times a chain of LAYERS x 2 MatMuls of the
paper preset's MLP shape (hidden x ffn, then back; weights larger than the last-level cache by
default) in each format the exporter writes:

    fp32            MatMul
    int4, int8      com.microsoft MatMulNBits, symmetric, accuracy level 4, the exporter's blocks
                    (128); int4-b32, int8-b32: in blocks of 32 (onnxruntime-genai's)
    int8-dynamic    MatMulInteger + DynamicQuantizeLinear (fused: DynamicQuantizeMatMul), the
                    weights quantized by export/quantize.py itself

    python -m unifork_rt.benchmarks.kernels [--rows 1,2,8,297] [--layers 40] [--threads 2]

    --accuracy-levels 4,0   times the MatMulNBits formats at each MatMulNBits accuracy level too
                            (0: float activations; 4: int8 activations, the exporter's): which
                            one is faster on this CPU (issue 16: "the accuracy level chosen per ISA")

Prints one line per format: ms per chain at each row count, the weights' bytes and GB/s at 1 row.
Needs onnx and onnxruntime (the `train` or `bench` extra). docs/BENCHMARKS.md ("int8-dynamic: an
int8 that batches") has its figures here, natively and under tests/avx2only/run.sh (AVX2 kernels).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

FORMATS = ("fp32", "int8-dynamic", "int8", "int8-b32", "int4", "int4-b32")


def build_chain(path: Path, hidden: int, ffn: int, layers: int, seed: int = 0) -> None:
    """A float32 ONNX graph x (M, hidden) -> MatMul(hidden, ffn) -> MatMul(ffn, hidden) -> ... x LAYERS."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits, x = [], [], "x"
    for i in range(layers):
        for j, shape in enumerate(((hidden, ffn), (ffn, hidden))):
            w = f"w{i}_{j}"
            inits.append(numpy_helper.from_array((rng.standard_normal(shape) * 0.03).astype(np.float32), w))
            nodes.append(helper.make_node("MatMul", [x, w], [f"y{i}_{j}"]))
            x = f"y{i}_{j}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["M", hidden])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["M", hidden])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path),
              save_as_external_data=True, location=path.name + ".data")


def time_chain(path: Path, rows: list[int], threads: int, repeats: int, hidden: int) -> list[float]:
    """Median seconds per run of the graph at PATH for each row count."""
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    out = []
    for m in rows:
        x = rng.standard_normal((m, hidden)).astype(np.float32)
        for _ in range(2):
            sess.run(None, {"x": x})
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            sess.run(None, {"x": x})
            times.append(time.perf_counter() - t)
        out.append(statistics.median(times))
    return out


def with_accuracy_level(path: Path, level: int) -> Path:
    """A copy of the MatMulNBits graph at PATH (beside it, sharing its external data) whose nodes run at
    accuracy LEVEL."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)
    for node in model.graph.node:
        if node.op_type == "MatMulNBits":
            kept = [a for a in node.attribute if a.name != "accuracy_level"]
            del node.attribute[:]
            node.attribute.extend([*kept, helper.make_attribute("accuracy_level", level)])
    out = path.with_name(f"{path.stem}.level{level}.onnx")
    onnx.save(model, str(out))
    return out


def weight_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def run(rows: list[int], hidden: int, ffn: int, layers: int, threads: int, repeats: int,
        formats=FORMATS, work: Path | None = None, levels: tuple[int, ...] = ()) -> list[dict]:
    """LEVELS: MatMulNBits accuracy levels to time besides the exporter's, for the int4 / int8 formats."""
    from ..export.quantize import WeightOnly, precision_and_block, quantize_graph, scheme_for

    logging.disable(logging.WARNING)  # the quantizers' advice and progress lines, per MatMul
    results = []
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        base = Path(tmp) / "fp32" / "chain.onnx"
        base.parent.mkdir()
        build_chain(base, hidden, ffn, layers)
        for fmt in formats:
            path = base
            if fmt != "fp32":
                path = Path(tmp) / fmt / "chain.onnx"
                path.parent.mkdir()
                build_chain(path, hidden, ffn, layers)
                quantize_graph(path, *precision_and_block(fmt))
            size = weight_bytes(path)
            variants = [(fmt, path)]
            scheme = scheme_for(*precision_and_block(fmt))  # None for fp32
            if isinstance(scheme, WeightOnly):
                variants += [(f"{fmt}@level{n}", with_accuracy_level(path, n))
                             for n in levels if n != scheme.accuracy_level]
            for label, graph in variants:
                secs = time_chain(graph, rows, threads, repeats, hidden)
                results.append({"format": label, "rows": rows, "seconds": secs, "weight_bytes": size,
                                "gb_per_s_1row": size / secs[0] / 1e9 if rows[0] == 1 else None})
    logging.disable(logging.NOTSET)
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m unifork_rt.benchmarks.kernels", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="1,2,8,297", help="row counts (M) to time, comma separated")
    ap.add_argument("--hidden", type=int, default=896, help="K of the first MatMul (the paper preset's hidden)")
    ap.add_argument("--ffn", type=int, default=3584, help="N of the first MatMul")
    ap.add_argument("--layers", type=int, default=40, help="MatMul pairs in the chain (40: 1 GB of fp32 weights)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--formats", default=",".join(FORMATS), help=f"of {', '.join(FORMATS)}")
    ap.add_argument("--accuracy-levels", default="", metavar="N,N",
                    help="MatMulNBits accuracy levels (0, 1, 2, 4) to time the int4 / int8 formats at, besides 4")
    ap.add_argument("--work", type=Path, default=None, help="folder for the temporary graphs (default: system temp)")
    a = ap.parse_args(argv)
    try:
        rows = [int(r) for r in a.rows.split(",")]
    except ValueError:
        ap.error(f"--rows must be comma-separated integers, got {a.rows!r}")
    formats = [f for f in a.formats.split(",") if f]
    if bad := [f for f in formats if f not in FORMATS] or [r for r in rows if r < 1]:
        ap.error(f"unknown format or row count: {bad}; formats: {', '.join(FORMATS)}")
    try:
        levels = tuple(dict.fromkeys(int(n) for n in a.accuracy_levels.split(",") if n.strip()))  # once each
    except ValueError:
        levels = (-1,)
    if set(levels) - {0, 1, 2, 4}:
        ap.error(f"--accuracy-levels takes MatMulNBits levels of 0, 1, 2, 4, comma separated; got {a.accuracy_levels!r}")
    print(f"{a.layers} x 2 MatMuls ({a.hidden}x{a.ffn}, {a.ffn}x{a.hidden}), {a.threads} threads; ms per chain")
    for r in run(rows, a.hidden, a.ffn, a.layers, a.threads, a.repeats, formats, a.work, levels):
        cells = "  ".join(f"{m}: {s * 1e3:8.2f}" for m, s in zip(r["rows"], r["seconds"]))
        bw = f"  {r['gb_per_s_1row']:.1f} GB/s at 1 row" if r["gb_per_s_1row"] else ""
        print(f"{r['format']:15s} {cells}   ({r['weight_bytes'] / 1e6:.0f} MB){bw}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What this process's libraries see of the CPU: numpy's dispatch features, PyTorch's kernel
capability and the integer path ONNX Runtime's MLAS takes. Exit 1 if AVX-512 or VNNI is visible,
so that tests/avx2only/run.sh never reports an AVX-512 run as an AVX2 one.

The MLAS check multiplies u8 255 by s8 127 over K = 64 with MatMulInteger: VNNI (VPDPBUSD) and
AVX-512 paths sum exactly (2072640); the AVX2 path (VPMADDUBSW) adds each pair of products into a
saturating int16, 32767 per pair, 1048544 in all (the saturation of issue #14, item 7).
"""

from __future__ import annotations

import sys

EXACT, SATURATED = 255 * 127 * 64, 32767 * 32


def numpy_features() -> list[str]:
    from numpy._core._multiarray_umath import __cpu_features__

    return [k for k, v in __cpu_features__.items() if v]


def torch_capability() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.backends.cpu.get_cpu_capability()


def mlas_u8s8() -> int | None:
    try:
        import numpy as np
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    w = numpy_helper.from_array(np.full((64, 16), 127, np.int8), "w")
    g = helper.make_graph([helper.make_node("MatMulInteger", ["a", "w"], ["y"])], "probe",
                          [helper.make_tensor_value_info("a", TensorProto.UINT8, ["M", 64])],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, ["M", 16])], [w])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return int(sess.run(None, {"a": np.full((4, 64), 255, np.uint8)})[0][0, 0])


def main() -> int:
    feats = numpy_features()
    wide = [f for f in feats if f.startswith("AVX512") or "VNNI" in f or f.startswith("AMX")]
    cap, u8s8 = torch_capability(), mlas_u8s8()
    path = {EXACT: "exact (VNNI / AVX-512)", SATURATED: "saturating pairs (AVX2, no VNNI)"}.get(u8s8, str(u8s8))
    print(f"avx2only probe: numpy AVX2={'AVX2' in feats} wider={wide or 'none'}; torch {cap or '-'}; "
          f"onnxruntime u8s8 {path if u8s8 is not None else '-'}", file=sys.stderr)
    bad = wide or (cap is not None and cap != "AVX2") or (u8s8 is not None and u8s8 != SATURATED)
    if bad:
        print("avx2only probe: AVX-512/VNNI is still visible: this would not be an AVX2-only run", file=sys.stderr)
    return 1 if bad or "AVX2" not in feats else 0


if __name__ == "__main__":
    sys.exit(main())

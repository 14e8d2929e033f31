"""Weight quantization of exported graphs for ONNX Runtime's CPU kernels (not portable).

Two families, both done by onnxruntime.quantization itself (we write no quantizer):

- weight-only blocks, com.microsoft MatMulNBits (`int4`, `int8`): every MatMul whose B is a
  constant [K, N] initializer gets its weights in blocks of `block_size` along K, each block
  with one float scale (symmetric: no zero point). accuracy_level 4 lets the CPU kernel quantize
  the activations to int8 per block and use integer dot products (onnxruntime-genai's CPU
  setting). Blocks: 128 for int4 and int8 (ONNX Runtime's quantizer default, GPTQ's and AWQ's group
  size; onnxruntime-genai's builder and llama.cpp use 32); `export --block-size` picks another. Why
  128 (issue #16): a kernel does one float multiply-add per block per row, so 32-wide blocks add a
  scale step every 32 integer products, which weighs at several rows (a prompt, a guided draw);
  128-wide blocks made a paper-sized int4 MatMul chain 1.4-1.5x faster at a prompt's 297 rows and
  1.15-1.4x at 8 rows (AVX-512 VNNI; 1.16x and 1.2x on AVX2 kernels), and read 4.25 instead of 5
  bits per weight; int8 in our kernels: 1.3x at 8 rows, 1.06-1.09x at 1-2 rows, 8.25 instead of 9
  bits per weight (docs/BENCHMARKS.md, docs/GRAPHS.md).
- dynamic int8 (`int8-dynamic`): MatMulInteger on int8 weights with one scale per output column,
  plus a DynamicQuantizeLinear of the activations (one scale per tensor) in front of every MatMul;
  ONNX Runtime fuses each pair into DynamicQuantizeMatMul, whose u8 x s8 GEMM stays memory-bound
  at a few rows (the draw batch) and is a real GEMM at a prompt's rows (issue #16). In `--graphs ort`
  bundles on AVX-512 VNNI CPUs unifork-rt's kernels run DynamicQuantizeMatMul and
  MatMulIntegerToFloat (runtime/kernels/qmatmul_op.c, docs/KERNELS.md "Integer ops").

torch's dynamo exporter writes nn.Linear as MatMul with a pre-transposed [K, N] initializer,
except where the input is 2-D and the weight is used as is: there it writes Gemm(transB=1)
(the tied lm_head of und_branch, the input projections of rq_head). MatMulNBitsQuantizer
handles MatMul only, so `gemm_to_matmul` first rewrites those Gemms as MatMul (+ Add of the
bias) with the weight transposed once at export.

The image tokenizer graphs (vision_encoder, vision_decoder) stay float: their codebook
MatMul feeds an argmin (a quantized distance picks other codes) and they run once per image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..errors import InputError
from ..runtime.qmatmul import FLOAT_KERNEL_OP

# Graphs with more weights than this keep them in NAME.onnx.data. Not only for protobuf's 2 GB cap:
# ONNX Runtime pre-packs MatMul / MatMulNBits weights into its kernels' layouts, and weights read
# from inside the .onnx stay resident beside the packed copy, while external ones do not (paper
# int4 trunk, one session: 292 MB resident inline, 221 MB external; docs/BENCHMARKS.md "Memory").
EXTERNAL_DATA_BYTES = 16 << 20
PROTOBUF_SAFE_BYTES = 1 << 30  # a model above this is exported with external data from the start (2 GB cap)
QUANTIZED_GRAPHS = ("connector", "trunk", "und_branch", "gen_branch", "rq_head")


@dataclass(frozen=True)
class WeightOnly:
    """MatMulNBits weight-only block quantization (onnxruntime MatMulNBitsQuantizer, round to nearest)."""
    bits: int
    block_size: int = 128  # weights per fp32 scale along K; a power of two >= 16 (MatMulNBits)
    symmetric: bool = True  # genai's default: no zero points to read
    accuracy_level: int = 4  # 4 = int8 activations and integer dot products on CPU (genai's CPU default)
    method: str = "MatMulNBits"


@dataclass(frozen=True)
class Dynamic:
    """Dynamic int8 (onnxruntime quantize_dynamic): int8 weights per output column, activations
    quantized at run time (per tensor: rows of one batch share the activation scale).

    per_channel: one weight scale per output column (a column of large weights no longer coarsens
    the others). quantize_dynamic writes per-column zero points too, all 0 for symmetric int8;
    `drop_zero_points` removes them, as ONNX Runtime's DynamicQuantizeMatMul with a per-column
    zero-point input runs about 1.5-2x slower per decode step than without (measured, 1 row).

    reduce_range: 7-bit weights ([-64, 64]). ONNX Runtime multiplies the uint8 activations by the
    int8 weights with VPMADDUBSW on AVX2 and AVX-512 CPUs without VNNI, which adds each pair of
    products into a saturating int16: 2 x 255 x 127 overflows it, 2 x 255 x 64 = 32640 does not.
    With full-range weights the results differed by machine (trunk kv_new 3.2e-2 off PyTorch on
    an AVX2 CPU, 7e-3 on AVX-512 VNNI); with 7 bits the integer sums are exact on every x86 CPU,
    as ONNX Runtime's quantization docs recommend for such machines.
    """
    weight_type: str = "int8"
    reduce_range: bool = True
    per_channel: bool = True
    method: str = "dynamic"


SCHEMES = {"int4": WeightOnly(bits=4, block_size=128), "int8": WeightOnly(bits=8, block_size=128),
           "int8-dynamic": Dynamic()}
BLOCK_SIZES = (16, 32, 64, 128, 256)  # what MatMulNBits' CPU kernels take
# names the bench and the kernel probe give a precision at another block size: NAME -> (precision, block)
NAMED_BLOCKS = {"int4-b32": ("int4", 32), "int8-b32": ("int8", 32)}  # onnxruntime-genai's blocks


def precision_and_block(name: str) -> tuple[str, int | None]:
    """'int4-b32' -> ('int4', 32); any other name -> (name, None: the precision's own block)."""
    return NAMED_BLOCKS.get(name, (name, None))


def scheme_for(precision: str, block_size: int | None = None):
    """The scheme of PRECISION (None for float precisions), with BLOCK_SIZE in place of its default."""
    scheme = SCHEMES.get(precision)
    if block_size is None or block_size == getattr(scheme, "block_size", None):
        return scheme
    if not isinstance(scheme, WeightOnly):
        raise InputError(f"--block-size applies to the weight-only precisions (int4, int8), not {precision}: "
                         "leave it out")
    if block_size not in BLOCK_SIZES:
        raise InputError(f"--block-size {block_size} is not one MatMulNBits takes: use one of "
                         f"{', '.join(map(str, BLOCK_SIZES))}")
    return replace(scheme, block_size=block_size)


def describe_scheme(precision: str, block_size: int | None = None) -> dict | None:
    """The manifest's `quantization` entry for PRECISION (None for float precisions)."""
    import onnxruntime

    scheme = scheme_for(precision, block_size)
    if scheme is None:
        return None
    return {**asdict(scheme), "graphs": list(QUANTIZED_GRAPHS), "onnxruntime": onnxruntime.__version__}


def quantize_graph(path: Path, precision: str, block_size: int | None = None) -> None:
    """Quantize the graph at PATH in place with the scheme of PRECISION (BLOCK_SIZE: see scheme_for)."""
    scheme = scheme_for(precision, block_size)
    if isinstance(scheme, Dynamic):
        import onnx
        from onnx import TensorProto
        from onnxruntime.quantization import QuantType, quantize_dynamic

        if any(n.op_type == FLOAT_KERNEL_OP for n in onnx.load(str(path), load_external_data=False).graph.node):
            model = onnx_load(path)  # an fp32 ort graph: quantize_dynamic reads MatMul from the file
            float_kernel_to_matmul(model.graph)
            save_graph(model, path)
        tmp = path.with_suffix(".q.onnx")
        quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
                         reduce_range=scheme.reduce_range, per_channel=scheme.per_channel,
                         # the per-channel path asks each MatMul output's type, which shape inference
                         # cannot give past com.microsoft ops (the ORT variant's GroupQueryAttention)
                         extra_options={"DefaultTensorType": TensorProto.FLOAT})
        model = onnx_load(tmp)
        drop_zero_points(model.graph)
        save_graph(model, path)
        tmp.unlink()
        return
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    model = onnx_load(path)  # all in memory from here
    float_kernel_to_matmul(model.graph)  # an fp32 ort graph: MatMulNBitsQuantizer takes MatMul
    gemm_to_matmul(model.graph)
    config = DefaultWeightOnlyQuantConfig(block_size=scheme.block_size, is_symmetric=scheme.symmetric,
                                          accuracy_level=scheme.accuracy_level, bits=scheme.bits)
    q = MatMulNBitsQuantizer(model, algo_config=config)
    q.process()
    q.model.topological_sort()
    save_graph(q.model.model, path)


def float_kernel_to_matmul(graph) -> int:
    """Rewrite com.microsoft TransposeMatMul nodes that are a plain A . B (what fp32 `--graphs ort` graphs
    hold for our float kernel, export/ort_graphs.py) back to MatMul, in place; the count rewritten."""
    from onnx import helper

    count = 0
    for n in graph.node:
        if n.op_type != FLOAT_KERNEL_OP or n.domain != "com.microsoft":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if attrs.get("alpha", 1.0) != 1.0 or any(attrs.get(f, 0) for f in ("transA", "transB", "transBatchA",
                                                                               "transBatchB")):
            continue
        n.op_type, n.domain = "MatMul", ""
        del n.attribute[:]
        count += 1
    return count


def drop_zero_points(graph) -> int:
    """Remove the weight zero-point input (B's, input 3) of every MatMulInteger where it is a constant
    of zeros: the same integers, and ONNX Runtime's fused kernel takes its faster path. Returns how
    many zero-point tensors were removed (their initializers go too, once nothing reads them)."""
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    dropped = set()
    for n in graph.node:
        if n.op_type == "MatMulInteger" and len(n.input) > 3 and n.input[3] in inits:
            if numpy_helper.to_array(inits[n.input[3]]).any():
                continue  # a real zero point (asymmetric weights): keep it
            dropped.add(n.input[3])
            del n.input[3]
    used = {i for n in graph.node for i in n.input}
    for name in dropped - used:
        graph.initializer.remove(inits[name])
    return len(dropped)


def onnx_load(path: Path):
    import onnx

    return onnx.load(str(path))  # with its external data, if any


def save_graph(proto, path: Path) -> None:
    """Write PROTO to PATH, its weights in PATH.onnx.data when they exceed EXTERNAL_DATA_BYTES
    (a stale data file from an earlier save is removed first)."""
    import onnx

    data = path.parent / (path.name + ".data")
    data.unlink(missing_ok=True)
    external = proto.ByteSize() > EXTERNAL_DATA_BYTES
    onnx.save(proto, str(path), save_as_external_data=external, all_tensors_to_one_file=True, location=data.name)


def gemm_to_matmul(graph) -> int:
    """Rewrite Gemm(A, W[, C]) with a constant W, transA=0, alpha=1, beta=1 as MatMul(A, W') [+ Add C],
    W' = W or W.T stored [K, N], so that MatMul-only quantizers see it. Returns the count rewritten.

        A --Gemm(transB=1)--> Y      becomes      A --MatMul(W.T)--> (+ C) --> Y
    """
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in graph.initializer}
    uses: dict[str, int] = {}
    for n in graph.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    nodes, count = [], 0
    for n in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if (n.op_type != "Gemm" or n.input[1] not in inits or attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0
                or attrs.get("beta", 1.0) != 1.0):
            nodes.append(n)
            continue
        w = numpy_helper.to_array(inits[n.input[1]])
        if attrs.get("transB", 0):
            w = w.T.copy()
        wname = f"{n.input[1]}.kn"  # [K, N]
        graph.initializer.append(numpy_helper.from_array(w, wname))
        has_bias = len(n.input) > 2 and n.input[2]
        mm_out = f"{n.output[0]}.mm" if has_bias else n.output[0]
        nodes.append(helper.make_node("MatMul", [n.input[0], wname], [mm_out], name=f"{n.name}.matmul"))
        if has_bias:
            nodes.append(helper.make_node("Add", [mm_out, n.input[2]], [n.output[0]], name=f"{n.name}.bias"))
        uses[n.input[1]] -= 1
        if uses[n.input[1]] == 0:
            graph.initializer.remove(inits[n.input[1]])
        count += 1
    graph.ClearField("node")
    graph.node.extend(nodes)
    return count

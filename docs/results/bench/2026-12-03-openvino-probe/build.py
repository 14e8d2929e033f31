import sys, logging
from pathlib import Path
from unifork_rt.benchmarks.kernels import build_chain
from unifork_rt.export.quantize import precision_and_block, quantize_graph
logging.disable(logging.WARNING)
root = Path("/work/ovprobe"); layers = int(sys.argv[1]) if len(sys.argv) > 1 else 20
for fmt in ("fp32", "int4", "int8", "int8-dynamic"):
    p = root / fmt / "chain.onnx"; p.parent.mkdir(exist_ok=True)
    build_chain(p, 896, 3584, layers)
    if fmt != "fp32":
        quantize_graph(p, *precision_and_block(fmt))
    print(fmt, "built")

"""Will TensorRT's ONNX parser take these graphs? Checked on the CPU, without TensorRT.

The source of truth is the operator table onnx-tensorrt publishes for TensorRT 10.x
(docs/operators.md, copied into `tensorrt_onnx_ops.tsv` beside this module). For every node
of a graph (subgraphs and model-local functions included) the checker asks:

    op type    in the table and marked Y?          (an N row or an unknown op is a problem)
    domain     the default ONNX domain?            (com.microsoft & co. need TensorRT plugins)
    data type  of the node's data input (input 0) one TensorRT has at all (DOUBLE, INT16, ...
               are not), and one the row lists?
    Cast       to a type TensorRT has, and one Cast's row lists?
    constants  inputs the table says must be initializers (`axes` of ReduceMean, Slice,
               Unsqueeze, ...) are initializers or Constant outputs?
    I/O        graph inputs/outputs of a type a TensorRT network can bind?

Each finding is an "error" (the parser refuses it: an N op, an unknown or custom-domain op,
a type TensorRT does not have, a run-time value where it needs a constant) or a "warning"
(outside what the table promises, but the parser may take it: a type TensorRT has that the
row does not list, an opset beyond the table's). Example of a warning: the table lists only
float types for Clip, while onnx-tensorrt's Clip importer also takes INT32/INT64 (it lowers
them to elementwise max/min); our RoPE position clamp is such an INT64 Clip.
The type list of a row describes the op's data tensor; auxiliary inputs (an INT64 `shape`
or `axes`, a BOOL condition elsewhere than input 0) are not held to it, which would only
produce false alarms. Other restriction texts are reported with the op list, not checked.
`onnx` is imported inside the functions: it comes with the `tensorrt`, `gpu` and `train` extras.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import UniforkError, require

TABLE = "tensorrt_onnx_ops.tsv"
# the table is published for these default-domain opsets (its header says so)
TABLE_OPSETS = (9, 20)
DEFAULT_DOMAINS = ("", "ai.onnx")
# ONNX TensorProto element type names -> the table's spelling; anything missing here has no
# TensorRT counterpart at all (DOUBLE, INT16, UINT16/32/64, STRING, COMPLEX*, ...).
TRT_TYPE_NAMES = {"FLOAT": "FP32", "FLOAT16": "FP16", "BFLOAT16": "BF16", "INT32": "INT32", "INT64": "INT64",
                  "INT8": "INT8", "UINT8": "UINT8", "BOOL": "BOOL", "FLOAT8E4M3FN": "FP8", "INT4": "INT4"}
_CONSTANT_RULE = re.compile(r"`(\w+)` must be (?:an initializer|a constant tensor|a build-time constant)")


@dataclass(frozen=True)
class OpSupport:
    """One row of the table."""

    op: str
    supported: bool
    types: frozenset[str]  # the table's names: FP32, FP16, BF16, INT32, INT64, BOOL, ...
    restrictions: str

    @property
    def constant_inputs(self) -> tuple[str, ...]:
        """Input names the restrictions require to be known at build time."""
        return tuple(_CONSTANT_RULE.findall(self.restrictions))


@dataclass(frozen=True)
class Problem:
    graph: str
    node: str
    op: str
    message: str
    severity: str = "error"  # "error": the parser refuses it; "warning": outside the table's promise

    def __str__(self) -> str:
        where = f"{self.graph}: " if self.graph else ""
        node = f" (node {self.node!r})" if self.node else ""
        return f"{self.severity}: {where}{self.op}{node}: {self.message}"


@dataclass(frozen=True)
class GraphReport:
    name: str
    ops: dict[str, int]  # op type -> node count, sorted by op type
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors


@functools.lru_cache(maxsize=None)
def load_table(path: str | None = None) -> dict[str, OpSupport]:
    """The operator table: op type -> OpSupport. Lines starting with '#' are comments."""
    if path is None:
        text = importlib.resources.files(__package__).joinpath(TABLE).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not rows or rows[0].split("\t")[:2] != ["operator", "supported"]:
        raise UniforkError(f"the TensorRT operator table {path or TABLE} has no 'operator<TAB>supported' header")
    table = {}
    for line in rows[1:]:
        cells = (line.split("\t") + ["", "", ""])[:4]
        op, flag, types, restrictions = (c.strip() for c in cells)
        names = {t.strip() for t in types.split(",") if t.strip()}
        if "INF64" in names:  # upstream typo (ConstantOfShape)
            names = (names - {"INF64"}) | {"INT64"}
        table[op] = OpSupport(op, flag == "Y", frozenset(names), restrictions)
    return table


def _load(model, name: str | None):
    """A ModelProto from a path or a proto; weights in external files are not read."""
    onnx = require("onnx", "tensorrt", "checking ONNX graphs for TensorRT")
    if isinstance(model, onnx.ModelProto):
        return model, name or model.graph.name
    path = Path(model)
    if not path.is_file():
        raise UniforkError(f"{path} does not exist: give an exported .onnx graph")
    return onnx.load(str(path), load_external_data=False), name or path.stem


def _type_map(onnx, model) -> dict[str, int]:
    """Tensor name -> ONNX element type, from shape inference where it succeeds."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # inference is a help for the type checks, not a requirement
        inferred = model
    types: dict[str, int] = {}

    def visit(graph):
        for vi in (*graph.input, *graph.output, *graph.value_info):
            if vi.type.HasField("tensor_type"):
                types[vi.name] = vi.type.tensor_type.elem_type
        for init in graph.initializer:
            types[init.name] = init.data_type
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR and node.op_type == "Constant":
                    types[node.output[0]] = attr.t.data_type
            for sub in _subgraphs(onnx, node):
                visit(sub)

    visit(inferred.graph)
    return types


def _subgraphs(onnx, node):
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def _type_name(onnx, elem_type: int) -> str:
    return onnx.TensorProto.DataType.Name(elem_type)


def check_graph(model, name: str | None = None, table: dict[str, OpSupport] | None = None) -> list[Problem]:
    """Problems TensorRT's ONNX parser would have with one graph (a path or a ModelProto).

    An empty list means: every op is in the table and marked supported, and the checked
    type and constant rules hold. It does not promise that the parser succeeds.
    """
    onnx = require("onnx", "tensorrt", "checking ONNX graphs for TensorRT")
    model, gname = _load(model, name)
    table = table or load_table()
    types = _type_map(onnx, model)
    opset = next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), None)
    functions = {(f.domain, f.name): f for f in model.functions}
    problems: list[Problem] = []

    def add(node, op, message, severity="error"):
        problems.append(Problem(gname, node, op, message, severity))

    if opset is not None and not TABLE_OPSETS[0] <= opset <= TABLE_OPSETS[1]:
        add("", "opset", f"default-domain opset {opset} is outside the opsets {TABLE_OPSETS[0]}..{TABLE_OPSETS[1]} "
                         "the TensorRT 10.x table covers: newer TensorRT may parse it; check its docs", "warning")

    for io, what in ((model.graph.input, "input"), (model.graph.output, "output")):
        for vi in io:
            t = _type_name(onnx, vi.type.tensor_type.elem_type)
            if t not in TRT_TYPE_NAMES:
                add("", what, f"graph {what} {vi.name!r} is {t}: a TensorRT network cannot bind {t} tensors")

    def visit_nodes(nodes, constants: set[str], seen_functions: tuple):
        for node in nodes:
            if node.op_type == "Constant":
                constants.update(node.output)
            key = (node.domain, node.op_type)
            if node.domain not in DEFAULT_DOMAINS:
                fn = functions.get(key)
                if fn is None:
                    add(node.name, f"{node.domain}::{node.op_type}",
                        "custom-domain op: TensorRT's ONNX parser needs a plugin for it; export with standard ops")
                elif key not in seen_functions:  # local functions are inlined by the parser
                    visit_nodes(fn.node, set(), seen_functions + (key,))
                continue
            row = table.get(node.op_type)
            if row is None:
                add(node.name, node.op_type, "not in TensorRT's ONNX operator table (unknown to its parser)")
                continue
            if not row.supported:
                add(node.name, node.op_type, "marked unsupported (N) in TensorRT's ONNX operator table")
                continue
            _check_types(onnx, node, row, types, add)
            _check_constants(onnx, node, row, opset, constants, add)
            for sub in _subgraphs(onnx, node):
                visit_nodes(sub.node, constants | {i.name for i in sub.initializer}, seen_functions)

    visit_nodes(model.graph.node, {i.name for i in model.graph.initializer}, ())
    return problems


def _check_types(onnx, node, row: OpSupport, types: dict[str, int], add) -> None:
    if not row.types:
        return

    def judge(t: str, what: str) -> None:
        listed = ", ".join(sorted(row.types))
        if t not in TRT_TYPE_NAMES:
            add(node.name, node.op_type, f"{what} is {t}, a type TensorRT does not have; export in float32 "
                                         f"(TensorRT runs {node.op_type} on {listed})")
        elif TRT_TYPE_NAMES[t] not in row.types:
            add(node.name, node.op_type, f"{what} is {t}; the TensorRT 10.x table lists {node.op_type} for "
                                         f"{listed} only (newer parsers may accept it)", "warning")

    if node.input and node.input[0] in types:
        judge(_type_name(onnx, types[node.input[0]]), f"input {node.input[0]!r}")
    if node.op_type == "Cast":
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if to is not None:
            judge(_type_name(onnx, to), "the cast target")


def _check_constants(onnx, node, row: OpSupport, opset: int | None, constants: set[str], add) -> None:
    wanted = row.constant_inputs
    if not wanted:
        return
    try:
        schema = onnx.defs.get_schema(node.op_type, opset or onnx.defs.onnx_opset_version())
    except onnx.defs.SchemaError:
        return
    names = [i.name for i in schema.inputs]
    for want in wanted:
        if want in names:
            k = names.index(want)
            if k < len(node.input) and node.input[k] and node.input[k] not in constants:
                add(node.name, node.op_type, f"input {want!r} ({node.input[k]!r}) is computed at run time; "
                                             "TensorRT needs it as an initializer or Constant")


def op_counts(model) -> dict[str, int]:
    """Op type -> number of nodes in the main graph (sorted by op type)."""
    model, _ = _load(model, None)
    counts = Counter(n.op_type if n.domain in DEFAULT_DOMAINS else f"{n.domain}::{n.op_type}"
                     for n in model.graph.node)
    return dict(sorted(counts.items()))


def check_bundle(bundle, names: tuple[str, ...] | None = None) -> dict[str, GraphReport]:
    """One report per graph of a loaded Bundle (unifork_rt.runtime.bundle.load_bundle), or of
    the graphs `names` only."""
    reports = {}
    for name, spec in bundle.graphs.items():
        if names and name not in names:
            continue
        model, _ = _load(spec.path, name)
        reports[name] = GraphReport(name, op_counts(model), tuple(check_graph(model, name)))
    return reports


def format_report(reports: dict[str, GraphReport]) -> str:
    """A plain-text report: per graph its status, its ops with counts, and its problems."""
    lines = []
    for r in reports.values():
        warnings = len(r.problems) - len(r.errors)
        status = "ok" if r.ok else f"{len(r.errors)} error(s)"
        status += f", {warnings} warning(s)" if warnings else ""
        lines.append(f"{r.name}: {status}; "
                     f"{sum(r.ops.values())} nodes, {len(r.ops)} op types")
        lines.append("  ops: " + ", ".join(f"{op}×{n}" for op, n in r.ops.items()))
        lines.extend(f"  ! {p}" for p in r.problems)
    return "\n".join(lines)


def require_supported(bundle) -> dict[str, GraphReport]:
    """Raise a UniforkError listing every error; return the reports (warnings included) otherwise."""
    reports = check_bundle(bundle)
    errors = Counter((p.graph, p.op, p.message) for r in reports.values() for p in r.errors)
    if errors:
        portable = bundle.manifest.get("portable", True)
        hint = ("this bundle was exported for ONNX Runtime only (precision "
                f"{bundle.manifest.get('precision')!r}, ONNX Runtime's own quantized ops): export an fp32 or fp16 bundle "
                "for TensorRT") if not portable else "re-export the graphs with standard ONNX ops"
        lines = [f"{g}: {op}: {msg}" + (f" (x{n})" if n > 1 else "") for (g, op, msg), n in errors.items()]
        shown = "\n  ".join(lines[:20]) + (f"\n  ... and {len(lines) - 20} more" if len(lines) > 20 else "")
        raise UniforkError(f"{bundle.root} has graphs TensorRT's ONNX parser cannot take "
                           f"({sum(errors.values())} error(s)):\n  {shown}\n{hint}")
    return reports

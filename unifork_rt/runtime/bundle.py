"""A graph bundle on disk: manifest.json, the ONNX graphs, config, tokenizer, embeddings.

A bundle is untrusted input. Loading reads manifest.json (size-capped) and checks it against
one typed, bounded schema before any other file is opened: every name resolves to a regular
file inside the bundle folder (symlinks included), every size is capped before hashing, and
every KV layout and graph signature must be the one the config implies. Then each file's
sha256 is checked, so a truncated or altered file, or a graph folder from another model, is
refused with one line that names the field or file and says to re-export.
No code from the bundle is ever executed (no pickle, no custom ops).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import ModelConfig
from ..errors import ConfigError, ModelFolderError, UniforkError
from ..io import path_problem, probe, shown
from . import limits
from .prompting import Prompting

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
GRAPHS = ("vision_encoder", "connector", "trunk", "und_branch", "gen_branch", "rq_head", "vision_decoder")
PRECISIONS = ("fp32", "fp16", "int4", "int8", "int8-dynamic")
# graph variants: "portable" = torch.onnx export, standard ops, the KV buffer in as `kv` and the new
# slices out as `kv_new`; "ort" = ONNX Runtime contrib ops for trunk / und_branch / gen_branch and
# rq_head, each layer's K and V slice of the same buffer bound as past_* and present_* (written in
# place). Bundles exported before 2026-12-04 hold the portable rq_head in an "ort" bundle: still read.
VARIANTS = ("portable", "ort")
DECODERS = ("trunk", "und_branch", "gen_branch")
SHARED_KV = (*DECODERS, "rq_head")  # the graphs with past_/present_ KV in the "ort" variant
FILES = ("tokenizer.json", "embeddings.safetensors", "config.json")  # the files the runtime opens
DTYPES = ("float32", "float16", "int64", "int32", "bool")
# Size caps, checked before a byte is hashed (a /proc file or a sparse 1 TB file must not hang us).
MAX_MANIFEST_BYTES = 16 << 20
MAX_FILE_BYTES = {"config.json": 1 << 20, "tokenizer.json": 256 << 20}
MAX_GRAPH_BYTES = 2 << 30  # protobuf's own limit: larger graphs keep their weights in a .data file
MAX_DATA_BYTES = 256 << 30
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# the draw settings a bundle may recommend (manifest "sampling"), each checked as the runtime checks an option
SAMPLING_CHECKS = {"cfg_scale": limits.cfg_scale, "temperature": limits.temperature, "top_k": limits.top_k,
                   "top_p": limits.top_p}
_REEXPORT = "re-export the bundle with `unifork-rt export`"


def sha256_file(path: Path, chunk: int = 1 << 20, size: int | None = None) -> str:
    """sha256 of a file; with `size`, read exactly that many bytes and refuse a file that holds
    more (it grew, or it is not the regular file it claimed to be)."""
    h = hashlib.sha256()
    left = size
    with open(path, "rb") as f:
        while block := f.read(chunk if left is None else min(chunk, left + 1)):
            if left is not None:
                left -= len(block)
                if left < 0:
                    raise ModelFolderError(f"{path} changed while it was being read: {_REEXPORT}")
            h.update(block)
    return h.hexdigest()


def config_sha256(cfg: ModelConfig) -> str:
    return hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class KVSpec:
    layers: int
    kv_heads: int
    max_seq: int
    head_dim: int

    def shape(self, batch: int) -> tuple[int, ...]:
        return (self.layers, 2, batch, self.kv_heads, self.max_seq, self.head_dim)


@dataclass(frozen=True)
class GraphSpec:
    name: str
    path: Path
    sha256: str
    inputs: tuple[dict, ...]
    outputs: tuple[dict, ...]
    kv: KVSpec | None
    kv_io: str = "fused"  # "fused": kv in, kv_new out; "shared": past_/present_{key,value}_i bound in place

    @property
    def feeds(self) -> tuple[str, ...]:
        """The inputs a caller feeds (the KV inputs come from the cache)."""
        if self.kv_io == "shared":
            return tuple(i["name"] for i in self.inputs if not i["name"].startswith("past_"))
        return tuple(i["name"] for i in self.inputs if i["name"] != "kv")

    def input(self, name: str) -> dict:
        for i in self.inputs:
            if i["name"] == name:
                return i
        raise KeyError(name)


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: dict
    config: ModelConfig
    graphs: dict[str, GraphSpec]

    @property
    def max_seq(self) -> int:
        return int(self.manifest["max_seq"])

    @property
    def precision(self) -> str:
        return self.manifest["precision"]

    @property
    def variant(self) -> str:
        return self.manifest.get("variant", "portable")

    @property
    def float_dtype(self) -> str:
        return "float16" if self.precision == "fp16" else "float32"

    def file(self, name: str) -> Path:
        return self.root / name


def load_bundle(root: str | Path, verify: bool = True, memory_limit: int | None = None) -> Bundle:
    """Read and check a bundle. verify=False skips the file hashes (not the schema, paths or sizes).

    memory_limit: bytes the KV buffers of one guided image may take (default: the memory available now).
    """
    root = Path(root)
    mpath = root / MANIFEST
    st = probe(root)  # a name too long, a folder that cannot be searched: one line, not a traceback
    if st is None:
        raise ModelFolderError(f"model folder {shown(root)} does not exist")
    if not stat.S_ISDIR(st.st_mode):
        raise ModelFolderError(f"model folder {shown(root)} is a file, not a folder: give the bundle's folder")
    try:
        os.lstat(mpath)
    except (FileNotFoundError, NotADirectoryError):
        hint = (" (this looks like a training checkpoint: export it first with `unifork-rt export "
                f"{root}`)") if os.path.isfile(root / "model.safetensors") else ""
        raise ModelFolderError(f"{mpath} is missing: not an exported graph bundle{hint}")
    except OSError as e:  # the folder can be listed but not searched (mode 444), ...
        raise ModelFolderError(f"cannot read {shown(mpath)}: {path_problem(e)}") from None
    real_root = Path(os.path.realpath(root))
    size = _regular_file(real_root, MANIFEST, MAX_MANIFEST_BYTES, mpath)
    try:
        with open(mpath, "rb") as f:
            raw = f.read(size + 1)
        m = json.loads(raw.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError) as e:
        why = "it is nested too deeply" if isinstance(e, RecursionError) else f"{type(e).__name__}: {e}"
        raise ModelFolderError(f"{mpath} is malformed ({why}); {_REEXPORT}") from None
    except OSError as e:
        raise ModelFolderError(f"cannot read {mpath}: {e.strerror or e}") from None
    cfg, graphs = check_manifest(m, root, where=str(mpath))
    itemsize = 2 if m["precision"] == "fp16" else 4
    pair = sum(limits.kv_bytes(graphs[g].kv, 2, itemsize) for g in ("trunk", "gen_branch", "rq_head"))
    limits.check_memory(limits.Estimate(pair, f"max_seq {m['max_seq']} (the KV buffers of one guided image)"),
                        memory_limit, "this bundle cannot run here; re-export it with a smaller --max-seq")
    # every file the runtime will open: inside the bundle, a regular file, not too large
    sizes = {}
    for g in graphs.values():
        entry = m["graphs"][g.name]
        sizes[entry["file"]] = (_regular_file(real_root, entry["file"], MAX_GRAPH_BYTES, g.path), g.sha256)
        if entry.get("data_file"):
            sizes[entry["data_file"]] = (_regular_file(real_root, entry["data_file"], MAX_DATA_BYTES,
                                                       root / entry["data_file"]), entry["data_sha256"])
    for name, digest in m["files"].items():
        sizes[name] = (_regular_file(real_root, name, _file_cap(name, cfg), root / name), digest)
    on_disk = ModelConfig.load(root / "config.json")
    if config_sha256(on_disk) != m["config_sha256"] or on_disk != cfg:
        raise ModelFolderError(f"{root}/config.json does not match the model the graphs were exported from "
                               "(manifest mismatch): re-export this model with `unifork-rt export`")
    if verify:
        for name, (size, digest) in sizes.items():
            try:
                got = sha256_file(root / name, size=size)
            except OSError as e:
                raise ModelFolderError(f"cannot read {shown(root / name)}: {path_problem(e)}") from None
            if got != digest:
                raise ModelFolderError(f"{root / name} does not match the sha256 in {mpath}: the file is truncated, "
                                       f"altered or from another export; {_REEXPORT}")
    return Bundle(root, m, cfg, graphs)


# --- the manifest schema -----------------------------------------------------------------------
def check_manifest(m, root: Path, where: str = MANIFEST) -> tuple[ModelConfig, dict[str, GraphSpec]]:
    """Check a parsed manifest against the schema; return its config and graph specs.

    Opens no file. Raises ModelFolderError naming the first field that is wrong.
    """
    def bad(field: str, problem: str) -> ModelFolderError:
        return ModelFolderError(f"{where}: {field} {problem}; {_REEXPORT}")

    def get(obj: dict, key: str, field: str, kind, optional: bool = False):
        if key not in obj:
            if optional:
                return None
            raise bad(field, "is missing")
        value = obj[key]
        if optional and value is None:
            return None
        if kind is int:
            ok = type(value) is int
        elif kind is float:
            ok = type(value) in (int, float)
        else:
            ok = isinstance(value, kind) and not isinstance(value, bool) or kind is bool and type(value) is bool
        if not ok:
            raise bad(field, f"must be {_kind(kind)}, not {_show(value)}")
        return value

    def hex64(obj: dict, key: str, field: str, optional: bool = False):
        v = get(obj, key, field, str, optional)
        if v is not None and not _HEX64.fullmatch(v):
            raise bad(field, f"must be 64 lowercase hex digits (a sha256), not {_show(v)}")
        return v

    def count(obj: dict, key: str, field: str, lo: int, hi: int) -> int:
        v = get(obj, key, field, int)
        if not lo <= v <= hi:
            raise bad(field, f"{v} must be in [{lo}, {hi}]")
        return v

    if not isinstance(m, dict):
        raise ModelFolderError(f"{where} holds {_show(m)}, not a manifest object; {_REEXPORT}")
    fmt = get(m, "format", "format", int)
    if fmt != MANIFEST_FORMAT:
        raise bad("format", f"{fmt} is not supported (expected {MANIFEST_FORMAT})")
    max_seq = count(m, "max_seq", "max_seq", 1, limits.MAX_SEQ)
    precision = get(m, "precision", "precision", str)
    if precision not in PRECISIONS:
        raise bad("precision", f"{_show(precision)} is not one of {', '.join(PRECISIONS)}")
    get(m, "opset", "opset", int, optional=True)
    get(m, "portable", "portable", bool, optional=True)
    variant = get(m, "variant", "variant", str, optional=True) or "portable"
    if variant not in VARIANTS:
        raise bad("variant", f"{_show(variant)} is not one of {', '.join(VARIANTS)}")
    get(m, "quantization", "quantization", dict, optional=True)
    exporter = get(m, "exporter", "exporter", str, optional=True)
    if exporter is not None and len(exporter) > 200:
        raise bad("exporter", "is longer than 200 characters")
    try:
        cfg = ModelConfig.from_dict(get(m, "config", "config", dict), source=f"{where}: config")
    except ConfigError as e:
        raise ModelFolderError(f"{e}; {_REEXPORT}") from None
    except (TypeError, ValueError, OverflowError) as e:
        raise bad("config", f"is ill-typed ({type(e).__name__}: {e})") from None
    if max_seq < cfg.image.num_cells + 2:
        raise bad("max_seq", f"{max_seq} cannot hold an image of {cfg.image.num_cells} cells")
    hex64(m, "config_sha256", "config_sha256")
    hex64(m, "weights_sha256", "weights_sha256", optional=True)

    files = get(m, "files", "files", dict)
    for name in FILES:
        if name not in files:
            raise bad(f"files.{name}", "is missing")
    for name in files:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise bad("files", f"names {_show(name)}: a bundle file is a plain name in the bundle folder")
        hex64(files, name, f"files.{name}")

    sampling = get(m, "sampling", "sampling", dict, optional=True) or {}
    checks = SAMPLING_CHECKS
    for key, value in sampling.items():
        if key not in checks:
            raise bad(f"sampling.{key}", f"is not a draw setting ({', '.join(checks)})")
        try:
            checks[key](value)
        except UniforkError as e:
            raise bad(f"sampling.{key}", f"is out of range ({e})") from None

    Prompting.from_dict(get(m, "prompting", "prompting", dict, optional=True), where)  # None: our plain format

    entries = get(m, "graphs", "graphs", dict)
    unknown = sorted(map(str, set(entries) - set(GRAPHS)))
    if unknown:
        raise bad("graphs", f"names unknown graph(s) {', '.join(unknown)[:80]}")
    expected = expected_signatures(cfg, max_seq, "float16" if precision == "fp16" else "float32", variant,
                                   shared_head=not legacy_ort_head(m))
    graphs = {}
    for name in GRAPHS:
        g = get(entries, name, f"graphs.{name}", dict)
        field = f"graphs.{name}"
        file = get(g, "file", f"{field}.file", str)
        if file != f"{name}.onnx":  # fixed names: a graph cannot be swapped for another or point elsewhere
            raise bad(f"{field}.file", f"is {_show(file)}; it must be {name}.onnx")
        digest = hex64(g, "sha256", f"{field}.sha256")
        data = get(g, "data_file", f"{field}.data_file", str, optional=True)
        if data is not None:
            if data != f"{file}.data":
                raise bad(f"{field}.data_file", f"is {_show(data)}; it must be {file}.data")
            hex64(g, "data_sha256", f"{field}.data_sha256")
        ops = get(g, "ops", f"{field}.ops", list, optional=True)
        if ops is not None and (len(ops) > 1000 or not all(isinstance(o, str) and len(o) <= 100 for o in ops)):
            raise bad(f"{field}.ops", "must be a list of at most 1000 operator names")
        want_in, want_out, want_kv = expected[name]
        inputs = _check_io(get(g, "inputs", f"{field}.inputs", list), want_in, f"{field}.inputs", bad)
        outputs = _check_io(get(g, "outputs", f"{field}.outputs", list), want_out, f"{field}.outputs", bad)
        kv_entry = get(g, "kv", f"{field}.kv", dict, optional=True)
        kv = None
        if kv_entry is not None:
            kv = KVSpec(*(count(kv_entry, k, f"{field}.kv.{k}", 0, limits.MAX_SEQ)
                          for k in ("layers", "kv_heads", "max_seq", "head_dim")))
        if kv != want_kv:
            raise bad(f"{field}.kv", f"is {kv}, but the config and max_seq imply {want_kv}")
        kv_io = "shared" if any(i[0].startswith("past_") for i in want_in) else "fused"
        graphs[name] = GraphSpec(name, root / file, digest, tuple(inputs), tuple(outputs), kv, kv_io)
    return cfg, graphs


def legacy_ort_head(m: dict) -> bool:
    """Whether manifest M is an "ort" bundle of before 12-04, whose rq_head is the portable graph
    (`kv` in, `kv_new` out); any shape of M is read without raising (check_manifest judges it)."""
    head = (m.get("graphs") or {}).get("rq_head") if isinstance(m.get("graphs"), dict) else None
    inputs = head.get("inputs") if isinstance(head, dict) else None
    return (m.get("variant") == "ort" and isinstance(inputs, list)
            and any(isinstance(i, dict) and i.get("name") == "kv" for i in inputs))


def expected_signatures(cfg: ModelConfig, max_seq: int, fdt: str, variant: str = "portable",
                        shared_head: bool = True) -> dict:
    """Per graph: (inputs, outputs, KV spec) as the exporter writes them for this config and variant
    (shared_head=False: an "ort" bundle of before 12-04, whose rq_head is the portable graph).

    A dim that is a string is dynamic (the manifest may name it freely); an int must match.
    """
    t, im, hd = cfg.text, cfg.image, cfg.head
    P, N, D, H, V, K = im.image_size, im.num_cells, im.depth, t.hidden_size, t.vocab_size, im.codebook_size
    text_kv = {"trunk": KVSpec(t.shared_layers, t.num_kv_heads, max_seq, t.head_dim)}
    text_kv["und_branch"] = text_kv["gen_branch"] = KVSpec(t.branch_layers, t.num_kv_heads, max_seq, t.head_dim)
    head_kv = KVSpec(hd.num_layers, hd.num_heads, D, hd.head_dim)

    def kv_io(spec: KVSpec, seq) -> tuple:
        return ("kv", fdt, [spec.layers, 2, "b", spec.kv_heads, max_seq if seq is None else seq, spec.head_dim])

    def shared(spec: KVSpec) -> tuple[list, list]:
        """The "ort" form: one layer's K or V slice of the buffer, (B, Hkv, S, Dh), as past_* in and present_* out."""
        layer = [fdt, ["b", spec.kv_heads, spec.max_seq, spec.head_dim]]
        return tuple([(f"{side}_{kv}_{i}", *layer) for i in range(spec.layers) for kv in ("key", "value")]
                     for side in ("past", "present"))

    sig = {
        "vision_encoder": ([("pixels", fdt, ["b", 3, P, P])], [("codes", "int64", ["b", N, D])], None),
        "connector": ([("codes", "int64", ["b", "t", D])], [("embeds", fdt, ["b", "t", H])], None),
        "rq_head": ([("hidden", fdt, ["b", H]), ("codes", "int64", ["b", D]), kv_io(head_kv, D), ("pos", "int64", [])],
                    [("logits", fdt, ["b", K]), ("kv_new", *kv_io(head_kv, "t")[1:])], head_kv),
        "vision_decoder": ([("codes", "int64", ["b", N, D])], [("pixels", fdt, ["b", 3, P, P])], None),
    }
    if variant == "ort" and shared_head:  # export/ort_graphs.py build_head_graph
        past, present = shared(head_kv)
        sig["rq_head"] = ([("hidden", fdt, ["b", H]), ("codes", "int64", ["b", D]), *past, ("pos", "int64", [])],
                          [("logits", fdt, ["b", K]), *present], head_kv)
    for name, inp, out, width in (("trunk", "x", "h", H), ("und_branch", "h", "logits", V),
                                  ("gen_branch", "h", "hidden", H)):
        spec = text_kv[name]
        first_out = (out, fdt, ["b", V]) if name == "und_branch" else (out, fdt, ["b", "t", width])
        if variant == "ort":
            past, present = shared(spec)
            sig[name] = ([(inp, fdt, ["b", "t", H]), *past, ("pos", "int64", []), ("start", "int64", ["b"])],
                         [first_out, *present], spec)
            continue
        sig[name] = ([(inp, fdt, ["b", "t", H]), kv_io(spec, None), ("pos", "int64", []), ("start", "int64", ["b"])],
                     [first_out, ("kv_new", *kv_io(spec, "t")[1:])], spec)
    return sig


def _check_io(entries: list, want: list, field: str, bad) -> list[dict]:
    """Names, dtypes and static dims of a graph's inputs or outputs against the expected ones."""
    if len(entries) != len(want):
        raise bad(field, f"lists {len(entries)} tensors; this graph has {len(want)} ({', '.join(w[0] for w in want)})")
    by_name = {}
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            raise bad(f"{field}[{i}]", f"must be an object with a name, not {_show(e)}")
        by_name[e["name"]] = e
    out = []
    for name, dtype, shape in want:
        e = by_name.get(name)
        if e is None:
            raise bad(field, f"has no tensor {name!r} (it lists {', '.join(sorted(by_name))[:80]})")
        if e.get("dtype") != dtype:
            raise bad(f"{field}.{name}.dtype", f"is {_show(e.get('dtype'))}, expected {dtype}")
        dims = e.get("shape")
        if not isinstance(dims, list) or len(dims) != len(shape):
            raise bad(f"{field}.{name}.shape", f"is {_show(dims)}, expected {len(shape)} dims")
        for got, w in zip(dims, shape):
            static = type(got) is int and 0 <= got < 2**31
            dynamic = isinstance(got, str) and 0 < len(got) <= 64
            if isinstance(w, int) and got != w or not (static or dynamic):
                raise bad(f"{field}.{name}.shape", f"is {_show(dims)}, expected {shape} (strings are dynamic dims)")
        out.append(e)
    return out


def _regular_file(real_root: Path, name: str, cap: int, shown: Path) -> int:
    """The size of bundle file `name`: it must resolve (symlinks followed) to a regular file
    inside the bundle folder, of at most `cap` bytes. Opens nothing."""
    path = os.path.realpath(real_root / name)
    if os.path.commonpath([path, str(real_root)]) != str(real_root):
        raise ModelFolderError(f"{shown} resolves to {path}, outside the bundle folder {real_root}: refused; "
                               f"{_REEXPORT}")
    try:
        st = os.stat(path)
    except OSError:
        raise ModelFolderError(f"{shown} is missing from the bundle: {_REEXPORT}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelFolderError(f"{shown} is not a regular file: {_REEXPORT}")
    if st.st_size > cap:
        raise ModelFolderError(f"{shown} is {limits.gib(st.st_size)}, above the {limits.gib(cap)} a bundle file of "
                               f"its kind may have: {_REEXPORT}")
    return st.st_size


def _file_cap(name: str, cfg: ModelConfig) -> int:
    if name == "embeddings.safetensors":  # (V, H) + boi + eoi, float32 at most, plus the header
        t = cfg.text
        return (t.vocab_size + 2) * t.hidden_size * 4 + (1 << 20)
    return MAX_FILE_BYTES.get(name, MAX_DATA_BYTES)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]} overflows a float")
    return value


def _kind(kind) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "an object",
            list: "a list"}[kind]


def _show(value) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 40 else text[:40] + "…"


# --- the files the runtime opens itself ------------------------------------------------------------
def load_tokenizer(bundle: Bundle):
    from tokenizers import Tokenizer

    path = bundle.file("tokenizer.json")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception for a malformed file
        raise ModelFolderError(f"{path} is not a tokenizer the runtime can read ({str(e)[:100]}); {_REEXPORT}") from None


class EmbeddingTable:
    """The token embedding table (V, H), memory-mapped from embeddings.safetensors.

    A lookup reads (and pages in) only the rows it asks for, converted to the bundle's float
    dtype: a caption touches a few dozen of the table's rows, so the table costs no resident
    memory until used (545 MB in fp32 at Qwen2.5-0.5B's 151,936 x 896). Quantized bundles store
    it in float16 (docs/GRAPHS.md)."""

    def __init__(self, rows, dtype):
        self._rows, self.dtype = rows, dtype
        self.shape = rows.shape

    def __getitem__(self, ids):
        return np.asarray(self._rows[ids], dtype=self.dtype)

    def __len__(self) -> int:
        return self.shape[0]


_SAFETENSORS_FLOATS = {"F32": "<f4", "F16": "<f2"}
_DTYPE_NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64", "I64": "int64",
                "I32": "int32", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def load_embeddings(bundle: Bundle):
    """(embed: EmbeddingTable (V, H), boi (H,), eoi (H,)) in the bundle's float dtype, shapes
    checked against the config; the table is memory-mapped, not read."""
    from safetensors import SafetensorError, safe_open

    path = bundle.file("embeddings.safetensors")
    t = bundle.config.text
    want = {"embed_tokens.weight": (t.vocab_size, t.hidden_size), "boi": (t.hidden_size,), "eoi": (t.hidden_size,)}
    try:  # safe_open checks the header and that every tensor's bytes lie inside the file
        with safe_open(str(path), framework="numpy") as f:
            found = {k: (f.get_slice(k).get_dtype(), tuple(f.get_slice(k).get_shape())) for k in f.keys()}
            for key, shape in want.items():
                dtype, got = found.get(key, (None, None))
                if dtype not in _SAFETENSORS_FLOATS or got != shape:
                    what = "missing" if dtype is None else f"{_DTYPE_NAMES.get(dtype, dtype)}{list(got)}"
                    raise ModelFolderError(f"{path}: tensor {key} is {what}, expected float32 or float16 "
                                           f"{list(shape)}; {_REEXPORT}")
            boi, eoi = (f.get_tensor(k).astype(bundle.float_dtype) for k in ("boi", "eoi"))
        with open(path, "rb") as fh:  # the table's place in the file, from the header safe_open checked
            n = int.from_bytes(fh.read(8), "little")
            begin = json.loads(fh.read(n))["embed_tokens.weight"]["data_offsets"][0]
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        raise ModelFolderError(f"{path} is not a readable safetensors file ({e}); {_REEXPORT}") from None
    rows = np.memmap(path, dtype=_SAFETENSORS_FLOATS[found["embed_tokens.weight"][0]], mode="r",
                     offset=8 + n + begin, shape=want["embed_tokens.weight"])
    return EmbeddingTable(rows, np.dtype(bundle.float_dtype)), boi, eoi

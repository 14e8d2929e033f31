"""Split a UniFork checkpoint into the seven ONNX graphs of a bundle (docs/GRAPHS.md).

The bundle is written into a temporary folder beside the target and renamed into place
only when every graph has been exported and checked, so a failed export leaves the
previous bundle (if any) untouched.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import stat
import tempfile
import warnings
from pathlib import Path

import torch
from safetensors.numpy import save_file
from tqdm import tqdm

from ..errors import InputError, ModelFolderError, UniforkError
from ..io import default_modes, path_problem, probe, read_json, shown
from ..model.checkpoint import CONFIG, TOKENIZER, WEIGHTS, load_model
from ..model.unifork import UniFork
from ..model.official import PROMPTING_FILE
from ..runtime import limits
from ..runtime.bundle import (GRAPHS, MANIFEST, MANIFEST_FORMAT, SAMPLING_CHECKS, SHARED_KV, VARIANTS, config_sha256,
                              expected_signatures, sha256_file)
from ..runtime.prompting import Prompting
from .graphs import GRAPH_DEFS, example_inputs, folded_head, kv_layers
from .ort_graphs import export_ort_graph
from .ort_image import ort_image_decoder
from .quantize import (EXTERNAL_DATA_BYTES, PROTOBUF_SAFE_BYTES, QUANTIZED_GRAPHS, SCHEMES, describe_scheme,
                       onnx_load, quantize_graph, save_graph, scheme_for)

OPSET = 18
# fp32/fp16: standard ONNX ops (any backend). The quantized ones use ONNX Runtime contrib or
# integer ops for its CPU kernels (export/quantize.py): int4 / int8 = MatMulNBits weight-only
# blocks, int8-dynamic = MatMulInteger + DynamicQuantizeLinear (int8 weights, a scale per column).
PRECISIONS = ("fp32", "fp16", *SCHEMES)


def export_bundle(model_dir: str | Path, out: str | Path | None = None, max_seq: int | None = None,
                  precision: str = "fp32", progress: bool = True,
                  sampling: dict | None = None, variant: str = "portable", block_size: int | None = None) -> Path:
    """Export MODEL_DIR (config.json + model.safetensors + tokenizer.json) to a bundle folder.

    variant: "portable" (standard ops, every backend) or "ort" (trunk, branches and depth head with
    ONNX Runtime contrib ops, export/ort_graphs.py: ORT CPU only). block_size: weights per scale of
    the int4 / int8 MatMulNBits blocks (default: the precision's, export/quantize.py)."""
    model_dir = Path(model_dir)
    out = Path(out) if out is not None else model_dir / "onnx"
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if variant not in VARIANTS:
        raise InputError(f"unknown graph variant {variant!r}; valid: {', '.join(VARIANTS)}")
    if variant == "ort" and precision == "fp16":
        raise InputError("--graphs ort is built for ONNX Runtime's CPU kernels, in fp32 and the quantized precisions "
                         "(int4, int8, int8-dynamic); for fp16 (GPU backends, TensorRT) export the portable graphs: "
                         "--graphs portable")
    scheme_for(precision, block_size)  # refuses a block size the precision does not take, before any work
    _check_sampling(sampling or {})  # everything the runtime would refuse in the bundle, before any work
    if max_seq is not None and not 1 <= max_seq <= limits.MAX_SEQ:
        raise InputError(f"--max-seq {max_seq} must be in [1, {limits.MAX_SEQ}]")
    _check_out(out)
    tokenizer = model_dir / TOKENIZER
    st = probe(tokenizer)
    if st is None or not stat.S_ISREG(st.st_mode):
        raise ModelFolderError(f"{tokenizer} is missing: the runtime needs the text tokenizer next to the weights")
    _check_tokenizer(tokenizer)
    model = load_model(model_dir)
    prompting = _prompting(model_dir)
    sampling = {**prompting.pop("sampling", {}), **(sampling or {})}  # the model's recommendation, then the caller's
    max_seq = model.cfg.text.max_seq_len if max_seq is None else max_seq
    if max_seq < model.cfg.image.num_cells + 8:
        raise InputError(f"--max-seq {max_seq} cannot hold an image of {model.cfg.image.num_cells} cells plus a "
                         f"prompt: use at least {model.cfg.image.num_cells + 32}")
    kv = expected_signatures(model.cfg, max_seq, "float16" if precision == "fp16" else "float32")
    pair = sum(limits.kv_bytes(kv[g][2], 2, 2 if precision == "fp16" else 4) for g in ("trunk", "gen_branch", "rq_head"))
    limits.check_memory(limits.Estimate(pair, f"--max-seq {max_seq} (the KV buffers of one guided image)"), None,
                        "export with a smaller --max-seq")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as e:
        raise InputError(f"cannot write --out {shown(out)}: {path_problem(e)}") from None
    try:
        write_bundle(model, tmp, tokenizer, sha256_file(model_dir / WEIGHTS), max_seq, precision, progress, sampling,
                     prompting or None, variant, block_size)
        default_modes(tmp)  # mkdtemp's 0700 would leave the bundle unreadable to other users
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _prompting(model_dir: Path) -> dict:
    """The model folder's prompting.json (templates, negative prompt, preprocessing; `convert`
    writes it for official UniFork checkpoints), checked; {} when there is none."""
    path = model_dir / PROMPTING_FILE
    if not path.is_file():
        return {}
    d = read_json(path)
    if not isinstance(d, dict):
        raise ModelFolderError(f"{path} must hold an object")
    d = dict(d)
    sampling = d.pop("sampling", None) or {}
    if not isinstance(sampling, dict):
        raise ModelFolderError(f"{path}: sampling must be an object of draw settings")
    _check_sampling(sampling, str(path))
    Prompting.from_dict(d, str(path))
    return {**d, "sampling": sampling}


def _check_sampling(sampling: dict, where: str | None = None) -> None:
    """Recommended draw settings, checked as the runtime checks a bundle's (runtime/bundle.py):
    the caller's (where None: the messages name the option) or those of the file `where`."""
    for key, value in sampling.items():
        check = SAMPLING_CHECKS.get(key)
        if check is None:
            raise InputError(f"{where or 'sampling'}: {key!r} is not a draw setting ({', '.join(SAMPLING_CHECKS)})")
        try:
            check(value)
        except UniforkError as e:
            if where is None:
                raise
            raise ModelFolderError(f"{where}: sampling.{key} is out of range ({e}): fix or remove it") from None


def _check_out(out: Path) -> None:
    """--out must be a new folder, an empty one or a bundle (replaced only at the end): checked before the export."""
    st = probe(out)
    if st is None:
        return
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"--out {shown(out)} is a file: choose a new or empty folder (or a bundle to replace)")
    try:
        if not (out / MANIFEST).is_file() and any(out.iterdir()):
            raise InputError(f"{shown(out)} exists and is not a bundle: choose an empty or new --out folder")
    except OSError as e:
        raise InputError(f"cannot write --out {shown(out)}: {path_problem(e)}") from None


def _check_tokenizer(path: Path) -> None:
    """tokenizer.json must be one the runtime can read (bundle.load_tokenizer), before a long export."""
    from tokenizers import Tokenizer

    try:
        Tokenizer.from_file(str(path))
    except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception for a malformed file
        raise ModelFolderError(f"{shown(path)} is not a tokenizer the runtime can read ({str(e)[:100]}): restore "
                               "it from the checkpoint it came with") from None


def write_bundle(model: UniFork, folder: Path, tokenizer: Path, weights_sha: str, max_seq: int,
                 precision: str, progress: bool = True, sampling: dict | None = None,
                 prompting: dict | None = None, variant: str = "portable", block_size: int | None = None) -> dict:
    model = model.eval()
    dtype = torch.float16 if precision == "fp16" else torch.float32
    if precision == "fp16":
        model = model.half()
    graphs, rewrites = {}, {}
    bar = tqdm(GRAPHS, desc="export", unit="graph", disable=not progress, leave=False)
    for name in bar:
        bar.set_postfix_str(name)
        path = folder / f"{name}.onnx"
        if variant == "ort" and name in SHARED_KV:
            export_ort_graph(model, name, path, max_seq, float_kernel=precision == "fp32")
        else:
            export_graph(model, name, path, max_seq, dtype)
            if variant == "ort" and name == "vision_decoder":  # sub-pixel Convs and fused GELUs (export/ort_image.py)
                rewrites[name] = ort_image_decoder(path)
        if precision in SCHEMES and name in QUANTIZED_GRAPHS:
            with _quiet_logs():
                quantize_graph(path, precision, block_size)
        graphs[name] = describe(path, name, model, max_seq)
        if name in rewrites:  # what export/ort_image.py rewrote: {"subpixel": n, "gelu": m} (0 where none)
            graphs[name]["ort_rewrites"] = rewrites[name]
    shutil.copyfile(tokenizer, folder / TOKENIZER)
    emb = {k: v.detach().cpu().numpy() for k, v in
           {"embed_tokens.weight": model.embed_tokens.weight, "boi": model.boi, "eoi": model.eoi}.items()}
    if precision in SCHEMES:  # quantized graphs: the lookup table in float16 (half the file; rows are mapped)
        emb["embed_tokens.weight"] = emb["embed_tokens.weight"].astype("float16")
    save_file(emb, str(folder / "embeddings.safetensors"))
    model.cfg.save(folder / CONFIG)
    manifest = {
        "format": MANIFEST_FORMAT, "max_seq": max_seq, "precision": precision, "opset": OPSET,
        # quantized graphs and the "ort" variant use ONNX Runtime's own ops
        "portable": precision not in SCHEMES and variant == "portable",
        "variant": variant,
        "quantization": describe_scheme(precision, block_size),  # None for fp32/fp16
        "exporter": f"torch {torch.__version__} (torch.onnx dynamo)",
        "config": model.cfg.to_dict(), "config_sha256": config_sha256(model.cfg), "weights_sha256": weights_sha,
        "files": {n: sha256_file(folder / n) for n in (TOKENIZER, "embeddings.safetensors", CONFIG)},
        "graphs": graphs,
        "sampling": dict(sampling or {}),  # recommended draw settings; the runtime's defaults fill the rest
    }
    if prompting:  # templates, negative prompt, preprocessing (runtime/prompting.py); absent for our format
        manifest["prompting"] = prompting
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def export_graph(model: UniFork, name: str, path: Path, max_seq: int, dtype: torch.dtype) -> None:
    trace_graph(model, name, path, max_seq, dtype)
    if path.stat().st_size > EXTERNAL_DATA_BYTES:  # written inline but large: its weights go to NAME.onnx.data
        save_graph(onnx_load(path), path)


def trace_graph(model: UniFork, name: str, path: Path, max_seq: int, dtype: torch.dtype) -> None:
    """Graph NAME of MODEL through torch.onnx (dynamo), saved to PATH as the exporter writes it (with PATH.data
    beside it above PROTOBUF_SAFE_BYTES of weights). The slow step of an export: seconds a graph even for micro.
    What it writes depends only on the model's weights and config, NAME, PATH's file name (PATH.data is named inside),
    MAX_SEQ, DTYPE, OPSET, PROTOBUF_SAFE_BYTES and the torch / onnx / onnxscript versions (the test suite's conftest
    reuses its files on that key)."""
    g = GRAPH_DEFS[name]
    args, dynamic = example_inputs(model, name, max_seq, dtype)
    quiet = io.StringIO()
    head = folded_head(model) if name == "rq_head" else contextlib.nullcontext()
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(quiet), _quiet_logs(), head:
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(g.module(model), args, None, dynamo=True, input_names=list(g.inputs),
                                        output_names=list(g.outputs), dynamic_shapes=(tuple(dynamic[n] for n in g.inputs),),
                                        opset_version=OPSET, verbose=False)
        except Exception as e:  # the exporter raises many types; keep its message, drop the traceback soup
            raise UniforkError(f"exporting graph {name} failed: {type(e).__name__}: {str(e)[:500]}") from e
        size = sum(p.numel() * p.element_size() for p in model.parameters())
        program.save(str(path), external_data=size > PROTOBUF_SAFE_BYTES)


def describe(path: Path, name: str, model: UniFork, max_seq: int) -> dict:
    """The manifest entry of one graph: its file, hash, inputs/outputs and KV layout."""
    import onnx

    onnx.checker.check_model(str(path))  # by path: also valid for graphs with external data (> 1 GB)
    proto = onnx.load(str(path), load_external_data=False)

    def io_list(values):
        return [{"name": v.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name,
                 "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]} for v in values]

    data = path.parent / (path.name + ".data")
    entry = {"file": path.name, "sha256": sha256_file(path), "inputs": io_list(proto.graph.input),
             "outputs": io_list(proto.graph.output), "data_file": None, "kv": None,
             "ops": sorted({n.op_type for n in proto.graph.node})}
    if data.is_file():
        entry.update(data_file=data.name, data_sha256=sha256_file(data))
    if GRAPH_DEFS[name].has_kv:
        if name == "rq_head":
            h = model.cfg.head
            entry["kv"] = {"layers": kv_layers(model, name), "kv_heads": h.num_heads,
                           "max_seq": model.cfg.image.depth, "head_dim": h.head_dim}
            entry["folded_attn_proj"] = h.folds_attn_proj  # export/graphs.py folded_head
        else:
            t = model.cfg.text
            entry["kv"] = {"layers": kv_layers(model, name), "kv_heads": t.num_kv_heads, "max_seq": max_seq,
                           "head_dim": t.head_dim}
    return entry


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished bundle into place; an existing bundle is replaced only now."""
    if out.exists():
        if not (out / MANIFEST).is_file() and any(out.iterdir()):
            raise InputError(f"{out} exists and is not a bundle: choose an empty or new --out folder")
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


@contextlib.contextmanager
def _quiet_logs():
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript", "torch._dynamo",
                                              "onnxruntime")] + [logging.getLogger()]  # quantizer logs to root
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)

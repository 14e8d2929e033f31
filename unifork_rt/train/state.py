"""Training checkpoints: ONE safetensors file holding everything a resumed run needs.

    model.<name>          every model tensor (frozen ones too: the file stands alone)
    optim.<i>.<key>       AdamW state of parameter i (exp_avg, exp_avg_sq, step)
    rng.torch             torch CPU generator state (rng.cuda.<i> on GPUs)
    extra.<name>          stage state that is a tensor (e.g. codebook usage counts)
    metadata["train_state"]  JSON: step, schedule, optimizer param groups, the numpy
                          generator states of every rank, data positions, run settings

Written through io.atomic_path (temporary file + rename), so a run killed while saving
leaves the previous checkpoint intact. Loading never unpickles: safetensors + json only.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import ModelFolderError
from ..io import atomic_path

CHECKPOINT = "checkpoint.safetensors"
FORMAT = 1


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict, extra: dict[str, torch.Tensor] | None = None) -> None:
    """Write model + optimizer + RNG + `state` (JSON-able) atomically to `path`."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    scalars = {}
    for idx, per_param in opt["state"].items():
        for key, value in per_param.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    for k, v in (extra or {}).items():
        tensors[f"extra.{k}"] = v.detach().cpu().contiguous()
    meta = {"format": FORMAT, **state, "optimizer": {"param_groups": opt["param_groups"], "scalars": scalars}}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"train_state": json.dumps(meta)})


def read_checkpoint(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(state JSON, tensors) of a checkpoint file, with a clear error when it is unusable."""
    if not path.is_file():
        raise ModelFolderError(f"no checkpoint at {path} to resume from: drop --resume to start fresh")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["train_state"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as e:
        raise ModelFolderError(f"{path} is not a readable training checkpoint ({type(e).__name__}: {e}); "
                               "delete it to restart the stage from scratch") from None
    if meta.get("format") != FORMAT:
        raise ModelFolderError(f"{path}: checkpoint format {meta.get('format')!r} is not {FORMAT}")
    return meta, tensors


def restore(meta: dict, tensors: dict[str, torch.Tensor], model: torch.nn.Module,
            optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Load model, optimizer and torch RNG state in place; returns the extra.* tensors."""
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    per_param: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, key = k.split(".", 2)
            per_param.setdefault(int(idx), {})[key] = v
    for k, v in meta["optimizer"]["scalars"].items():
        idx, key = k.split(".", 1)
        per_param.setdefault(int(idx), {})[key] = v
    groups = meta["optimizer"]["param_groups"]
    for g in groups:  # JSON turned tuples into lists; AdamW unpacks betas either way, keep them exact
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    return {k[6:]: v for k, v in tensors.items() if k.startswith("extra.")}

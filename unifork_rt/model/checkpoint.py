"""Model folders: config.json + model.safetensors (+ tokenizer.json). Never unpickles."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..config import ModelConfig
from ..errors import ModelFolderError
from ..io import atomic_path, probe, shown
from .unifork import UniFork

CONFIG, WEIGHTS, TOKENIZER = "config.json", "model.safetensors", "tokenizer.json"


def save_model(model: UniFork, folder: str | Path, tokenizer: str | Path | None = None,
               metadata: dict[str, str] | None = None) -> Path:
    """Write the model folder; each file is written atomically."""
    folder = Path(folder)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:  # NaN or inf weights (a diverged run): nothing is written, the folder keeps what it held
        raise ModelFolderError(f"the model's weights are not finite (NaN or infinity in {len(bad)} tensor(s), e.g. "
                               f"{', '.join(bad[:3])}): not saved to {shown(folder)}; if training diverged, lower --lr "
                               "and keep --grad-clip and --weight-decay finite")
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "preset": model.cfg.preset, **(metadata or {})})
    model.cfg.save(folder / CONFIG)
    if tokenizer is not None and Path(tokenizer).resolve() != (folder / TOKENIZER).resolve():
        with atomic_path(folder / TOKENIZER) as tmp:
            shutil.copyfile(tokenizer, tmp)
    return folder


def load_state(path: Path) -> dict[str, torch.Tensor]:
    st = probe(path)
    if st is None or not stat.S_ISREG(st.st_mode):
        raise ModelFolderError(f"{path} is missing: the model folder has no weights "
                               "(train or convert a model first: `unifork-rt train` / `unifork-rt init`)")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelFolderError(f"{path} is not a readable safetensors file ({e}); "
                               "it may be truncated: restore or re-save the checkpoint") from None


def load_model(folder: str | Path) -> UniFork:
    """Build the model from config.json and load model.safetensors, checking every tensor."""
    folder = Path(folder)
    st = probe(folder)
    if st is None:
        raise ModelFolderError(f"model folder {shown(folder)} does not exist")
    if not stat.S_ISDIR(st.st_mode):
        raise ModelFolderError(f"model folder {shown(folder)} is a file, not a folder: give the model's folder")
    cfg = ModelConfig.load(folder / CONFIG)
    _check_shapes(cfg, folder / WEIGHTS)  # before UniFork(cfg) allocates what a damaged config asks for
    model = UniFork(cfg)
    load_into(model, load_state(folder / WEIGHTS), folder / WEIGHTS)
    model.eval()
    return model


def _check_shapes(cfg: ModelConfig, path: Path) -> None:
    """The weights file's tensor shapes (its header) against those the config implies, before
    UniFork(cfg) allocates them (a vocabulary of 10^9 in a damaged config.json)."""
    from ..params import preset_shapes, safetensors_shapes

    try:
        got = safetensors_shapes(path)
    except ModelFolderError:
        return  # a missing file or an unreadable header: load_state says what is wrong
    expected = preset_shapes(cfg)
    if set(expected) == set(got):  # other names: load_into says which, once the (bounded) model is built
        _check_against(expected, got, path)


def _check_against(expected: dict[str, tuple], got: dict[str, tuple], source: Path | str) -> None:
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s), e.g. {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s), e.g. {', '.join(unexpected[:3])}")
        raise ModelFolderError(f"{source} does not match its config.json: {'; '.join(parts)}")
    for name, shape in got.items():
        if tuple(shape) != tuple(expected[name]):
            raise ModelFolderError(f"{source}: tensor {name} has shape {tuple(shape)} but config.json "
                                   f"implies {tuple(expected[name])}")


def load_into(model: UniFork, state: dict[str, torch.Tensor], source: Path | str) -> None:
    _check_against({k: tuple(v.shape) for k, v in model.state_dict().items()},
                   {k: tuple(v.shape) for k, v in state.items()}, source)
    model.load_state_dict(state, strict=True)

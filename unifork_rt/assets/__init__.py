"""The bundled model: an exported graph bundle shipped inside the package."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelFolderError

BUNDLED = Path(__file__).parent / "shapes"


def default_model_dir() -> Path:
    """The bundled ShapesWorld model's graph bundle."""
    if not (BUNDLED / "manifest.json").is_file():
        raise ModelFolderError(f"no bundled model at {BUNDLED}: this installation ships without one; "
                               "pass --model BUNDLE_DIR (an export from `unifork-rt export`)")
    return BUNDLED

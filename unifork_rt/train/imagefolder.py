"""User data: a folder in the Hugging Face `imagefolder` convention.

    my_data/
      metadata.jsonl     one JSON object per line: {"file_name": "img/0001.png", "text": "a red circle"}
      img/0001.png ...

Each row is one (image, text) pair used for both tasks: the text is the drawing prompt for
generation and the answer for understanding. Every image is decoded once at load time,
converted to RGB and resized to the model's image size (kept in memory as uint8: 12 KB per
64 px image), so a bad file is found before training starts, not hours into it.

Bad rows (malformed JSON, missing or non-string fields, empty text, a path that escapes the
folder, a missing or unreadable image) are always reported with their line number; the
`bad_rows` policy decides whether they are skipped ("skip") or fail the run ("fail").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError

METADATA = "metadata.jsonl"
BAD_ROW_POLICIES = ("skip", "fail")


@dataclass(frozen=True)
class BadRow:
    line: int  # 1-based line number in metadata.jsonl
    reason: str

    def __str__(self) -> str:
        return f"{METADATA}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class ImageFolder:
    """images (M, P, P, 3) uint8; texts[m] belongs to images[m]; bad rows that were skipped."""

    root: Path
    images: np.ndarray
    texts: tuple[str, ...]
    skipped: tuple[BadRow, ...]

    def __len__(self) -> int:
        return len(self.texts)


def load_imagefolder(root: str | Path, image_size: int, bad_rows: str = "fail",
                     report=print) -> ImageFolder:
    """Read and validate the folder; `report(line)` receives one message per bad row.

    bad_rows="fail" raises InputError listing every bad row; "skip" drops them.
    """
    if bad_rows not in BAD_ROW_POLICIES:
        raise InputError(f"--bad-rows {bad_rows!r} is not one of {', '.join(BAD_ROW_POLICIES)}")
    root = Path(root)
    meta = root / METADATA
    if not meta.is_file():
        raise InputError(f"{meta} is missing: an image folder needs a {METADATA} with one "
                         '{"file_name": ..., "text": ...} object per line')
    images, texts, bad = [], [], []
    base = root.resolve()
    with open(meta, encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue  # blank lines (e.g. a trailing newline) are not rows
            row = _read_row(line, line_no, base, image_size)
            if isinstance(row, BadRow):
                bad.append(row)
                report(f"bad row: {row}")
            else:
                images.append(row[0])
                texts.append(row[1])
    if bad and bad_rows == "fail":
        listed = "\n  ".join(str(b) for b in bad)
        raise InputError(f"{len(bad)} bad row(s) in {meta}:\n  {listed}\n"
                         "fix them, or pass --bad-rows skip to train without them")
    if not texts:
        raise InputError(f"{meta} has no usable rows ({len(bad)} bad): nothing to train on")
    if bad:
        report(f"skipped {len(bad)} bad row(s) of {len(bad) + len(texts)} in {meta}")
    return ImageFolder(root, np.stack(images), tuple(texts), tuple(bad))


def _read_row(line: str, line_no: int, base: Path, image_size: int):
    """(image (P, P, 3) uint8, text) or a BadRow saying what is wrong."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        return BadRow(line_no, f"malformed JSON ({e.msg} at column {e.colno})")
    if not isinstance(obj, dict):
        return BadRow(line_no, f"expected a JSON object, got {type(obj).__name__}")
    name, text = obj.get("file_name"), obj.get("text")
    if not isinstance(name, str) or not name:
        return BadRow(line_no, "'file_name' is missing or not a non-empty string")
    if not isinstance(text, str) or not text.strip():
        return BadRow(line_no, f"'text' of {name!r} is missing or empty")
    path = (base / name).resolve()
    if not path.is_relative_to(base):  # absolute paths, `..` and symlinks out of the folder
        return BadRow(line_no, f"file_name {name!r} points outside the folder {base}")
    if not path.is_file():
        return BadRow(line_no, f"file_name {name!r} does not exist")
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (image_size, image_size):
                im = im.resize((image_size, image_size), Image.Resampling.BICUBIC)
            pixels = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        return BadRow(line_no, f"cannot read image {name!r} ({type(e).__name__}: {e})")
    return pixels, text.strip()

"""Image input and output for the runtime: checked loading, conversion, atomic PNG writes."""

from __future__ import annotations

import io
import stat
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError
from ..io import atomic_path, probe, shown

MAX_PIXELS = 40_000_000  # larger images are refused as possible decompression bombs
MIN_SIDE = 8


def load_image(path: str | Path, size: int, pad: tuple[int, int, int] | None = None) -> np.ndarray:
    """Read an image file -> float32 (3, size, size) in [-1, 1].

    Any Pillow mode is accepted: L/LA/P/RGBA/CMYK/16-bit are converted to RGB, transparency
    composited onto white (the ShapesWorld background). Non-square images are resized as is.
    An EXIF orientation is applied: a photo is read as it is displayed, not as it is stored.

    pad: an (r, g, b) fill: the image is first centred on a square of that colour (the official
    UniFork preprocessing, grey 127), so it is not distorted.

    Thread-safe: no warnings filter is touched (filters are process-global; a filter changed
    here would leak into other threads). Truncated pixel data raises in Pillow itself.
    """
    path = Path(path)
    st, name = probe(path), shown(path)
    if st is None:
        raise InputError(f"image {name} does not exist")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"image {name} is not a file")
    return _decode(path, f"image {name}", name, size, pad)


def decode_image(data: bytes, size: int, name: str = "the image") -> np.ndarray:
    """An encoded image file's bytes (PNG, JPEG, ...) -> float32 (3, size, size) in [-1, 1],
    checked and converted as load_image does; `name` says which image in error messages."""
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise InputError(f"{name} is empty: send the bytes of an image file (PNG, JPEG, ...)")
    return _decode(io.BytesIO(data), name, name, size)


def _decode(src, name: str, subject: str, size: int, pad: tuple[int, int, int] | None = None) -> np.ndarray:
    """`name` starts the messages about a readable image, `subject` the one about an unreadable file."""
    try:
        with Image.open(src) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise InputError(f"{name} is {w}x{h} px, above the {MAX_PIXELS // 1_000_000} MP limit "
                                 "(possible decompression bomb): downscale it first")
            if min(w, h) < MIN_SIDE:
                raise InputError(f"{name} is {w}x{h} px; at least {MIN_SIDE}x{MIN_SIDE} is needed")
            im.load()
            rgb = to_rgb(upright(im), name)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{name} is too large (possible decompression bomb): downscale it first") from None
    except UnidentifiedImageError:
        raise InputError(f"{subject} is not an image Pillow can read (corrupt, or not an image file)") from None
    except (OSError, ValueError, SyntaxError, Warning) as e:
        raise InputError(f"{name} is truncated or corrupt ({e})") from None
    return _sized_pixels(rgb, size, pad)


def pil_pixels(im: Image.Image, size: int, pad: tuple[int, int, int] | None = None) -> np.ndarray:
    """An in-memory Pillow image -> float32 (3, size, size) in [-1, 1], converted as load_image does."""
    w, h = im.size
    if min(w, h) < MIN_SIDE:
        raise InputError(f"image is {w}x{h} px; at least {MIN_SIDE}x{MIN_SIDE} is needed")
    if w * h > MAX_PIXELS:
        raise InputError(f"image is {w}x{h} px, above the {MAX_PIXELS // 1_000_000} MP limit: downscale it first")
    try:
        return _sized_pixels(to_rgb(upright(im)), size, pad)
    except (OSError, ValueError) as e:
        raise InputError(f"image cannot be converted ({e})") from None


def upright(im: Image.Image) -> Image.Image:
    """The image as displayed: its EXIF orientation applied (a corrupt EXIF block is ignored)."""
    try:
        return ImageOps.exif_transpose(im)
    except (ValueError, SyntaxError, OSError, KeyError, TypeError, struct.error, ZeroDivisionError):
        return im


def pad_square(rgb: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    """Centre the image on a square canvas of `fill` (the longer side; the offset rounds down)."""
    w, h = rgb.size
    if w == h:
        return rgb
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), tuple(fill))
    canvas.paste(rgb, ((side - w) // 2, (side - h) // 2))
    return canvas


def _sized_pixels(rgb: Image.Image, size: int, pad: tuple[int, int, int] | None = None) -> np.ndarray:
    if pad is not None:
        rgb = pad_square(rgb, pad)
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
    return pixels_from_uint8(np.asarray(rgb))


def to_rgb(im: Image.Image, name: str = "the image") -> Image.Image:
    """Any mode -> RGB; alpha is composited onto white; 16/32-bit integer images are rescaled."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        if not np.isfinite(a).all():  # a float TIFF can hold NaN / inf: no brightness to rescale
            raise InputError(f"{name} holds pixel values that are not finite (NaN or infinity): save it with "
                             "finite values")
        lo, hi = float(a.min()), float(a.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        im = Image.fromarray(((a - lo) * scale).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, im).convert("RGB")
    return im.convert("RGB")


def pixels_from_uint8(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [-1, 1]."""
    return (rgb.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0).astype(np.float32)


def uint8_from_pixels(pixels: np.ndarray) -> np.ndarray:
    """(3, H, W) float in [-1, 1] -> (H, W, 3) uint8."""
    x = np.clip((pixels.astype(np.float32) + 1.0) * 127.5, 0, 255)
    return np.rint(x).astype(np.uint8).transpose(1, 2, 0)


def png_bytes(rgb: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 image encoded as PNG."""
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def save_png(rgb: np.ndarray, path: str | Path) -> Path:
    """Write an (H, W, 3) uint8 image atomically: no partial PNG is ever left behind."""
    path = Path(path)
    data = png_bytes(rgb)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path

"""What the served models do with the requests Triton hands them, in plain numpy.

No Triton here, so this is tested without a server. A request is a dict of input name ->
numpy array whose first dimension is the request's rows (k); an optional input it did not
send has no entry. A handler returns, per request, a dict of outputs or the `UniforkError`
that fails that request alone (its one-line message is what the client gets).

    caption:  every request's images that share a prompt run as one batch (greedy, so a row
              keeps its own max_new_tokens by stopping early: the same caption as the CLI)
    draw:     every valid request's prompts run as one batch (runtime.draw_batch: per-request
              seed and settings, so an image does not depend on its batch-mates)
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from ..config import CAPTION_PROMPT
from ..errors import InputError, UniforkError
from ..runtime.images import decode_image, png_bytes
from ..runtime.pipeline import DrawRequest, DrawSettings, UniForkRuntime

Request = dict[str, np.ndarray]

MAX_NEW_TOKENS = 32  # the CLI's default
MAX_IMAGES = 16  # per prompt: bounds one request's share of a batch (2 rows per image with CFG)


# --- inputs ---------------------------------------------------------------------------------
def _column(req: Request, name: str, k: int | None) -> np.ndarray | None:
    a = req.get(name)
    if a is None:
        return None
    a = np.asarray(a).reshape(-1)  # [k, 1] with batching, [1] without
    if k is not None and a.shape[0] != k:
        raise InputError(f"input {name} has {a.shape[0]} rows but the request has {k}: send one per row")
    return a


def _texts(req: Request, name: str, k: int | None, default: str | None = None) -> list[str]:
    a = _column(req, name, k)
    if a is None:
        if default is None:
            raise InputError(f"input {name} is missing")
        return [default] * k
    out = []
    for v in a:
        try:
            out.append(v.decode("utf-8") if isinstance(v, (bytes, bytearray)) else str(v))
        except UnicodeDecodeError:
            raise InputError(f"input {name} is not UTF-8 text") from None
    return out


def _numbers(req: Request, name: str, k: int, cast, default) -> list:
    a = _column(req, name, k)
    if a is None:
        return [default] * k
    if cast is float:
        # FP32 on the wire: take the shortest decimal that gives the same float32 (what the client
        # wrote, e.g. 0.96), so the settings equal the CLI's float64 ones
        return [float(str(np.float32(v))) for v in a]
    return [int(v) for v in a]


def _images(req: Request, size: int) -> list[np.ndarray]:
    a = _column(req, "image", None)
    if a is None:
        raise InputError("input image is missing: send the bytes of an image file (PNG, JPEG, ...)")
    return [decode_image(v if isinstance(v, bytes) else bytes(v), size, "the image" if len(a) == 1 else f"image {j} of the request")
            for j, v in enumerate(a)]


def _max_new(req: Request, k: int) -> list[int]:
    out = _numbers(req, "max_new_tokens", k, int, MAX_NEW_TOKENS)
    for m in out:
        if m < 1:
            raise InputError(f"max_new_tokens {m} must be >= 1")
    return out


def _text_out(texts: Sequence[str]) -> np.ndarray:
    return np.array([[t.encode("utf-8")] for t in texts], dtype=object)  # (k, 1) BYTES


# --- caption --------------------------------------------------------------------------------
def caption_batch(rt: UniForkRuntime, requests: Sequence[Request]) -> list:
    """Caption every request's images; images that share a prompt run as one batch."""
    P = rt.cfg.image.image_size
    results: list = [None] * len(requests)
    captions: dict[int, list] = {}
    groups: dict[str, list[tuple[int, int, np.ndarray, int]]] = {}  # prompt -> (request, row, pixels, max_new)
    for i, req in enumerate(requests):
        try:
            pixels = _images(req, P)
            k = len(pixels)
            prompts, max_new = _texts(req, "prompt", k, CAPTION_PROMPT), _max_new(req, k)
        except UniforkError as e:
            results[i] = e
            continue
        captions[i] = [None] * k
        for j in range(k):
            groups.setdefault(prompts[j], []).append((i, j, pixels[j], max_new[j]))
    for prompt, rows in groups.items():
        try:
            ids = rt.caption_ids([r[2] for r in rows], prompt=prompt, max_new_tokens=max(r[3] for r in rows))
        except UniforkError as e:  # e.g. a prompt too long for max_seq: fails the requests that sent it
            for i, *_ in rows:
                results[i] = e
            continue
        for (i, j, _, m), row in zip(rows, ids):
            captions[i][j] = rt.caption_text(row[:m])
    for i, texts in captions.items():
        if results[i] is None:
            results[i] = {"caption": _text_out(texts)}
    return results


def caption_pieces(rt: UniForkRuntime, req: Request) -> Iterator[dict[str, np.ndarray]]:
    """One image's caption, token by token: outputs `text` (the new piece) and `token_id`.

    The pieces join to the caption the CLI prints (the same incremental decoding)."""
    pixels = _images(req, rt.cfg.image.image_size)
    if len(pixels) != 1:
        raise InputError(f"caption_stream takes one image per request, got {len(pixels)}")
    prompt, max_new = _texts(req, "prompt", 1, CAPTION_PROMPT)[0], _max_new(req, 1)[0]
    ids, shown = [], ""
    for tok in rt.caption_stream(pixels, prompt=prompt, max_new_tokens=max_new):
        if tok[0] == rt.cfg.eos_token_id:
            return
        ids.append(int(tok[0]))
        text = rt.tokenizer.decode(ids, skip_special_tokens=True)
        piece = text[len(shown):].lstrip() if not shown else text[len(shown):]
        shown = text
        yield {"text": np.array([piece.encode("utf-8")], dtype=object), "token_id": np.array([tok[0]], np.int64)}


# --- draw -----------------------------------------------------------------------------------
def draw_requests(rt: UniForkRuntime, req: Request) -> list[DrawRequest]:
    """One Triton request's rows as runtime DrawRequests, each checked (InputError if not valid)."""
    prompts = _texts(req, "prompt", None)
    k = len(prompts)
    ns = _numbers(req, "n", k, int, 1)
    if len(set(ns)) > 1:
        raise InputError(f"n differs between the rows of one request ({sorted(set(ns))}): the image output is "
                         "[rows, n, H, W, 3], so send one n, or one request per n")
    if not 1 <= ns[0] <= MAX_IMAGES:
        raise InputError(f"n {ns[0]} must be in [1, {MAX_IMAGES}] images per prompt")
    seeds = _numbers(req, "seed", k, int, 0)
    given = {name: _numbers(req, name, k, cast, None) for name, cast in
             (("cfg_scale", float), ("temperature", float), ("top_k", int), ("top_p", float))}
    out = []
    for r in range(k):
        settings = DrawSettings.for_bundle(rt.bundle, **{name: v[r] for name, v in given.items()})
        q = DrawRequest(prompts[r], settings, ns[r], seeds[r])
        rt.check_draw_request(q)
        out.append(q)
    return out


def draw_batch(rt: UniForkRuntime, requests: Sequence[Request]) -> list:
    """Draw every request's prompts; all valid requests run as one batch."""
    results: list = [None] * len(requests)
    pending: list[tuple[int, list[DrawRequest]]] = []
    for i, req in enumerate(requests):
        try:
            pending.append((i, draw_requests(rt, req)))
        except UniforkError as e:
            results[i] = e
    if not pending:
        return results
    try:
        images = rt.draw_batch([q for _, qs in pending for q in qs])
    except UniforkError as e:  # checked above, so not expected: then every request of the batch is told
        for i, _ in pending:
            results[i] = e
        return results
    at = 0
    for i, qs in pending:
        rows = images[at:at + len(qs)]
        at += len(qs)
        results[i] = {"image": np.stack([np.stack(r) for r in rows]),  # (k, n, H, W, 3) uint8
                      "png": np.array([[png_bytes(im) for im in r] for r in rows], dtype=object)}  # (k, n)
    return results

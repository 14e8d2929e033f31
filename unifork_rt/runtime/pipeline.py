"""The thin runtime: chain the trunk into the branch a task needs. No torch.

    caption:  pixels ─► vision_encoder ─► connector ─► [BOI img EOI prompt] ─► trunk ─► und_branch ─► token
                                                        token ─► embed ─► trunk ─► und_branch ─► token ...
    draw:     [pad.. prompt BOI] (cond rows) + [pad.. BOI] (uncond rows) ─► trunk ─► gen_branch ─► hidden
              per cell: D x rq_head steps (CFG mix, sample, copy to both rows) ─► connector ─► trunk ─► gen ...
              codes ─► vision_decoder ─► pixels
              several prompts: one batch, every prompt's rows left-padded to the longest (draw_batch)

Batches: a backend with a largest batch (TensorRT engines are built for 1..max_batch rows) gets
every graph call split into chunks of at most that many rows, each chunk with its own KV buffers;
the logits are joined before sampling, so results do not depend on the chunking.

Thread safety: the backend's sessions are shared; every call allocates its own KV buffers
(once per call, reused across all its steps), so concurrent calls from several threads do
not interfere.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image

from ..config import CAPTION_PROMPT
from ..errors import InputError
from . import limits
from .backend import DEFAULT_BACKEND, Backend, get_backend
from .bundle import Bundle, load_bundle, load_embeddings, load_tokenizer
from .images import load_image, pil_pixels, uint8_from_pixels
from .prompting import Prompting
from .sampling import Sampling, cfg_mix, sample


@dataclass(frozen=True)
class DrawSettings:
    cfg_scale: float = 4.0
    temperature: float = 1.0
    top_k: int = 900
    top_p: float = 0.96

    def __post_init__(self):  # checked here, so settings built by hand are checked too
        limits.cfg_scale(self.cfg_scale)
        Sampling(self.temperature, self.top_k, self.top_p)

    @classmethod
    def for_bundle(cls, bundle: Bundle, **overrides) -> "DrawSettings":
        """The bundle's recommended settings (manifest "sampling"), then explicit overrides."""
        base = dict(bundle.manifest.get("sampling") or {})
        base.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(base) - {"cfg_scale", "temperature", "top_k", "top_p"})
        if unknown:
            raise InputError(f"unknown draw setting(s) {', '.join(unknown)}; valid: cfg_scale, temperature, top_k, top_p")
        return cls(**base)


@dataclass(frozen=True)
class DrawRequest:
    """One prompt of a batched draw: n images with its own seed and settings (a server request)."""
    prompt: str
    settings: DrawSettings  # e.g. DrawSettings.for_bundle(rt.bundle, cfg_scale=...)
    n: int = 1
    seed: int = 0


@dataclass(frozen=True)
class _Rows:
    """Where one request's rows sit in the batch, and how they sample."""
    cond: slice
    uncond: slice | None  # None: no guidance (cfg_scale 1), so no uncond rows
    cfg_scale: float
    sampling: Sampling
    rng: np.random.Generator

    @property
    def both(self) -> np.ndarray:
        """cond rows then uncond rows: the layout cfg_mix expects."""
        return np.r_[self.cond, self.uncond]


@dataclass(frozen=True)
class _DrawPlan:
    """The batch of a multi-prompt draw: every request's cond rows first, then the uncond rows
    of the guided ones; a single request gives the layout [cond x n, uncond x n]."""
    rows: tuple[_Rows, ...]
    ids: tuple[list[int], ...]
    batch: int
    prompt_len: int  # the longest prompt; shorter ones are left-padded
    negative: tuple[int, ...] = ()  # the uncond rows' prompt (the bundle's negative prompt); () = null prompt

    @classmethod
    def of(cls, rt: "UniForkRuntime", requests: Sequence[DrawRequest]) -> "_DrawPlan":
        ids, checked = [], []
        for q in requests:  # every request is checked before any work starts
            i, sampling = rt.check_draw_request(q)
            ids.append(i)
            checked.append(sampling)
        n_cond = sum(q.n for q in requests)
        rows, c, u = [], 0, n_cond
        for q, sampling in zip(requests, checked):
            guided = q.settings.cfg_scale != 1.0
            rows.append(_Rows(slice(c, c + q.n), slice(u, u + q.n) if guided else None, q.settings.cfg_scale,
                              sampling, np.random.default_rng(q.seed)))
            c, u = c + q.n, u + (q.n if guided else 0)
        negative = rt.negative_ids if n_cond < u else []
        return cls(tuple(rows), tuple(ids), u, max(max(map(len, ids)), len(negative)), tuple(negative))

    def prefill(self, embed: np.ndarray, boi: np.ndarray, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
        """x (B, P + 1, H): cond rows [pad.. prompt BOI], uncond rows [pad.. negative BOI] (the
        null prompt when the bundle has no negative prompt); start (B,): each row's first real slot."""
        P = self.prompt_len
        x = np.broadcast_to(embed[pad_id], (self.batch, P + 1, embed.shape[1])).copy()
        x[:, P] = boi
        start = np.full(self.batch, P, dtype=np.int64)
        for r, ids in zip(self.rows, self.ids):
            x[r.cond, P - len(ids):P] = embed[ids]
            start[r.cond] = P - len(ids)
            if r.uncond is not None and self.negative:
                x[r.uncond, P - len(self.negative):P] = embed[list(self.negative)]
                start[r.uncond] = P - len(self.negative)
        return x, start


class UniForkRuntime:
    """Caption and draw with an exported bundle.

    >>> rt = UniForkRuntime("bundle/")            # or None for the bundled model
    >>> rt.caption(["cat.png"])                   # ['a red circle']
    >>> images = rt.draw(["a red circle"], n=2, seed=0)   # list of (H, W, 3) uint8
    """

    def __init__(self, model_dir: str | Path | None = None, backend: str = DEFAULT_BACKEND,
                 verify: bool = True, memory_limit: int | None = None, **backend_options):
        """memory_limit: bytes one call may need (default: the memory available at the call)."""
        if model_dir is None:
            from .. import assets

            model_dir = assets.default_model_dir()
        bundle = load_bundle(model_dir, verify=verify, memory_limit=memory_limit)
        self._setup(bundle, load_tokenizer(bundle), load_embeddings(bundle), memory_limit)
        self.backend = get_backend(backend, bundle, **backend_options)

    @classmethod
    def from_parts(cls, bundle: Bundle, tokenizer, embeddings: tuple[np.ndarray, np.ndarray, np.ndarray],
                   backend: Backend, memory_limit: int | None = None) -> "UniForkRuntime":
        """A runtime over parts already in memory: a bundle (or the contract of one), a
        tokenizers.Tokenizer, (embed (V, H), boi (H,), eoi (H,)) and a loaded backend (the
        PyTorch backend of export/torch_backend.py)."""
        rt = cls.__new__(cls)
        rt._setup(bundle, tokenizer, embeddings, memory_limit)
        rt.backend = backend
        return rt

    def _setup(self, bundle: Bundle, tokenizer, embeddings, memory_limit: int | None) -> None:
        self.memory_limit = memory_limit
        self.bundle = bundle
        self.cfg = bundle.config
        self.tokenizer = tokenizer
        self.embed, self.boi, self.eoi = embeddings
        self.prompting = Prompting.from_manifest(bundle.manifest)  # templates, negative prompt, image padding
        # the bundle's fixed token runs, tokenised once: the text before the image in a caption, and
        # the unconditional rows' prompt (the negative prompt through the draw template; [] = null prompt)
        self.caption_prefix_ids = self.template_ids(self.prompting.caption_prefix)
        neg = self.prompting.negative_prompt
        self.negative_ids = [] if neg is None else self.template_ids(self.prompting.draw_text(neg))

    @property
    def _special(self) -> list[str]:
        """The tokenizer's special tokens (a user's prompt may not smuggle them in)."""
        return [t.content for t in self.tokenizer.get_added_tokens_decoder().values() if t.special]

    @property
    def providers(self) -> list[str]:
        return self.backend.providers

    def close(self) -> None:
        self.backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- helpers -------------------------------------------------------------------------
    def encode_text(self, text: str, what: str = "prompt") -> list[int]:
        if not isinstance(text, str):
            raise InputError(f"{what} must be a string, got {type(text).__name__}")
        if "\x00" in text:
            raise InputError(f"{what} contains a NUL character")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:  # lone surrogates: the shell handed us bytes that are not UTF-8
            raise InputError(f"{what} is not valid UTF-8 (at character {e.start}): pass UTF-8 text") from None
        for token in self._special:
            if token in text:
                raise InputError(f"{what} contains the special token {token!r}: remove it")
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        if any(i >= self.cfg.text.vocab_size for i in ids):
            raise InputError(f"{what} has tokens outside the model's vocabulary: the tokenizer does not match")
        return ids

    def template_ids(self, text: str) -> list[int]:
        """Ids of a bundle template (trusted text: its special tokens are parsed as such)."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids if text else []

    def caption_prompt_ids(self, prompt: str) -> list[int]:
        """The ids a caption puts after the image: PROMPT checked (encode_text), within the bundle's template
        where it has one (official checkpoints: "\n{prompt} ASSISTANT:")."""
        ids = self.encode_text(prompt)
        if self.prompting.caption_suffix != "{prompt}":  # the model's template around the instruction
            ids = self.template_ids(self.prompting.caption_text(prompt))
        return ids

    def _chunks(self, rows: int, size: int | None = None) -> list[slice]:
        """Row ranges of at most `size`, by default the backend's largest batch (one range when it has no limit)."""
        size = size or self.backend.max_batch or rows
        return [slice(i, min(i + size, rows)) for i in range(0, rows, size)]

    def _run_rows(self, graph: str, feeds: dict[str, np.ndarray], chunks: list[slice], caches=None) -> dict:
        """Run a graph chunk by chunk (every feed but the scalar pos has rows first); outputs joined.
        caches: one per chunk."""
        outs = []
        for i, rows in enumerate(chunks):
            part = feeds if len(chunks) == 1 else {
                k: v if v.ndim == 0 else np.ascontiguousarray(v[rows]) for k, v in feeds.items()}
            outs.append(self.backend.run(graph, part, None if caches is None else caches[i]))
        return outs[0] if len(outs) == 1 else {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

    def _new_caches(self, graphs: tuple[str, ...], chunks: list[slice]) -> list:
        """One KV buffer per graph and chunk, allocated once per call."""
        return [tuple(self.backend.new_cache(g, r.stop - r.start) for g in graphs) for r in chunks]

    def _step_rows(self, x: np.ndarray, caches: list, pos: int, start: np.ndarray, branch: str,
                   chunks: list[slice]) -> np.ndarray:
        """step chunk by chunk (caches: a (trunk, branch) pair per chunk); outputs joined."""
        if len(chunks) == 1:
            return self.step(x, caches[0], pos, start, branch)
        return np.concatenate([self.step(np.ascontiguousarray(x[r]), c, pos, start[r], branch)
                               for r, c in zip(chunks, caches)])

    def step(self, x: np.ndarray, caches, pos: int, start: np.ndarray, branch: str) -> np.ndarray:
        """Trunk then one branch over new inputs x (B, T, H) written at positions [pos, pos + T).

        caches: (trunk, branch) from backend.new_cache; start (B,): each row's first real slot.
        Returns und_branch logits (B, V) of the last position, or gen_branch hidden (B, T, H).
        """
        if pos + x.shape[1] > self.bundle.max_seq:
            need = pos + x.shape[1]
            raise InputError(f"the sequence needs {need} positions but the bundle was exported with max_seq "
                             f"{self.bundle.max_seq}: shorten the prompt or re-export with --max-seq {need + 64}")
        p = np.array(pos, dtype=np.int64)
        h = self.backend.run("trunk", {"x": x, "pos": p, "start": start}, caches[0])["h"]
        out = self.backend.run(branch, {"h": h, "pos": p, "start": start}, caches[1])
        return out["logits" if branch == "und_branch" else "hidden"]

    def caption_prefill(self, embeds: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        """The understanding sequence [prefix (Q), BOI, image (N), EOI, prompt (P)]: embeds (B, N, H) ->
        x (B, Q + N + 2 + P, H). The prefix is the bundle's caption_prefix (none for our own format)."""
        B, _, H = embeds.shape
        before = self.caption_prefix_ids
        pre = np.broadcast_to(self.embed[before], (B, len(before), H))
        text = np.broadcast_to(self.embed[list(ids)], (B, len(ids), H))
        return np.ascontiguousarray(np.concatenate([pre, np.broadcast_to(self.boi, (B, 1, H)), embeds,
                                                    np.broadcast_to(self.eoi, (B, 1, H)), text], axis=1))

    def draw_prefill(self, requests: Sequence[DrawRequest]) -> tuple[np.ndarray, np.ndarray]:
        """The generation sequences of a batched draw (cond rows [pad.. prompt BOI], then uncond rows
        [pad.. BOI]): x (B, P + 1, H) and start (B,)."""
        return _DrawPlan.of(self, requests).prefill(self.embed, self.boi, self.cfg.pad_token_id)

    # --- understanding -------------------------------------------------------------------------
    def encode_images(self, images: Sequence) -> np.ndarray:
        """Paths, Pillow images or (3, P, P) float arrays in [-1, 1] -> codes (B, N, D)."""
        P = self.cfg.image.image_size
        pad = self.prompting.pad
        pixels = np.stack([self._pixels(im, P, i, pad) for i, im in enumerate(images)]).astype(self.bundle.float_dtype)
        return self._run_rows("vision_encoder", {"pixels": pixels}, self._chunks(len(pixels)))["codes"]

    @staticmethod
    def _pixels(im, P: int, i: int = 0, pad: tuple[int, int, int] | None = None) -> np.ndarray:
        if isinstance(im, (str, Path)):
            return load_image(im, P, pad)
        if isinstance(im, Image.Image):
            return pil_pixels(im, P, pad)
        want = f"an image array must be (3, {P}, {P}) floats in [-1, 1]"
        if not isinstance(im, (np.ndarray, list, tuple)):
            raise InputError(f"image {i} is a {type(im).__name__}: pass a path, a Pillow image or {want[3:]}")
        try:
            a = np.asarray(im, np.float32)
        except (ValueError, TypeError, OverflowError) as e:
            raise InputError(f"image {i}: {want} ({type(e).__name__}: {str(e)[:80]})") from None
        if a.shape != (3, P, P):
            raise InputError(f"{want}, got shape {list(a.shape)}; "
                             "pass a path or a Pillow image to have it converted and resized")
        if not np.isfinite(a).all():
            raise InputError(f"image {i}: {want}; it holds NaN or infinity")
        lo, hi = float(a.min()), float(a.max())
        if lo < -1 - 1e-5 or hi > 1 + 1e-5:
            hint = " (it looks like 0..255 pixels: pass x / 127.5 - 1, or a Pillow image)" if hi > 1.5 else ""
            raise InputError(f"image {i}: {want}, but its values span [{lo:g}, {hi:g}]{hint}")
        return a

    @staticmethod
    def _image_list(images) -> list:
        """One image or a sequence of them -> a list (a bare path is one image, not its characters)."""
        if isinstance(images, (str, Path, Image.Image)) or isinstance(images, np.ndarray) and images.ndim == 3:
            return [images]
        if isinstance(images, (bytes, bytearray)):
            raise InputError("an image path must be a str or pathlib.Path, not bytes")
        try:
            images = list(images)
        except TypeError:
            raise InputError(f"images must be a list of paths, Pillow images or arrays, not a "
                             f"{type(images).__name__}") from None
        if not images:
            raise InputError("no images given")
        return images

    def caption_stream(self, images: Sequence, prompt: str = CAPTION_PROMPT, max_new_tokens: int = 32,
                       temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
                       seed: int = 0) -> Iterator[np.ndarray]:
        """Yield the next token ids (B,) step by step; rows that finished yield eos."""
        images = self._image_list(images)
        max_new_tokens = limits.integer(max_new_tokens, "max-new-tokens", 1, limits.MAX_SEQ)
        sampling = Sampling(temperature, top_k, top_p)
        rng = np.random.default_rng(limits.seed(seed))
        ids = self.caption_prompt_ids(prompt)
        N, S = self.cfg.image.num_cells, self.bundle.max_seq
        prefill = len(self.caption_prefix_ids) + N + 2 + len(ids)
        self._check_memory(len(images), min(prefill, S), "und_branch", len(images),
                           f"captioning {len(images)} images", "caption fewer images per call")
        codes = self.encode_images(images)
        B = codes.shape[0]
        if prefill + 1 > S:
            raise InputError(f"the caption prompt is {len(ids)} tokens; with {N} image cells it needs "
                             f"{prefill + 1} positions but max_seq is {S}: shorten it or re-export with "
                             f"--max-seq {prefill + 64}")
        max_new_tokens = min(max_new_tokens, S - prefill + 1)
        chunks = self._chunks(B)
        emb = self._run_rows("connector", {"codes": codes}, chunks)["embeds"]  # (B, N, H)
        x = self.caption_prefill(emb, ids)  # (B, Q + N + 2 + P, H)
        caches = self._new_caches(("trunk", "und_branch"), chunks)
        start = np.zeros(B, dtype=np.int64)
        logits = self._step_rows(x, caches, 0, start, "und_branch", chunks)
        eos = self.cfg.eos_token_id
        done = np.zeros(B, dtype=bool)
        pos = prefill
        for step in range(max_new_tokens):
            tok = np.where(done, eos, sample(logits, sampling, rng))
            done |= tok == eos
            yield tok
            if done.all() or step == max_new_tokens - 1:
                return
            logits = self._step_rows(self.embed[tok][:, None], caches, pos, start, "und_branch", chunks)
            pos += 1

    def caption_ids(self, images: Sequence, **kw) -> list[list[int]]:
        images = self._image_list(images)
        steps = list(self.caption_stream(images, **kw))
        out = []
        for b in range(len(images)):
            row = []
            for tok in steps:
                if tok[b] == self.cfg.eos_token_id:
                    break
                row.append(int(tok[b]))
            out.append(row)
        return out

    def caption(self, images: Sequence, **kw) -> list[str]:
        return [self.caption_text(r) for r in self.caption_ids(images, **kw)]

    def caption_text(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True).strip()

    # --- generation ------------------------------------------------------------------------------
    def draw_codes(self, prompt: str, n: int = 1, settings: DrawSettings | None = None, seed: int = 0,
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Sample codes (n, N, D) for one prompt; cond and uncond rows run as one batch."""
        s = settings or DrawSettings.for_bundle(self.bundle)
        return self.draw_codes_batch([DrawRequest(prompt, s, n, seed)], progress)[0]

    def draw_codes_batch(self, requests: Sequence[DrawRequest],
                         progress: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
        """Sample codes for several prompts in one batch: a list of (n_r, N, D) int64, in request order.

        All rows run through the graphs together, prompts left-padded to the longest (the graphs
        count rotary positions from each row's `start`), but every request mixes CFG with its own
        scale and samples with its own settings and its own Generator: a request's codes are those
        it gets when drawn alone with the same seed, whichever requests share its batch.
        """
        if isinstance(requests, DrawRequest) or not requests:
            raise InputError("no drawing requests given: pass a list of DrawRequest")
        plan = _DrawPlan.of(self, requests)
        im = self.cfg.image
        N, D, B, P = im.num_cells, im.depth, plan.batch, plan.prompt_len
        images = sum(r.cond.stop - r.cond.start for r in plan.rows)
        self._check_memory(B, P + 1, "gen_branch", images, f"{images} image(s) ({B} rows with guidance)",
                           "draw fewer images per call (a smaller --n or fewer prompts)")
        x, start = plan.prefill(self.embed, self.boi, self.cfg.pad_token_id)  # (B, P + 1, H), (B,)
        chunks = self._chunks(B)  # the backend's largest batch: cond and uncond rows may sit in different chunks
        caches = self._new_caches(("trunk", "gen_branch"), chunks)
        head_caches = [c for c, in self._new_caches(("rq_head",), chunks)]
        hidden = self._step_rows(x, caches, 0, start, "gen_branch", chunks)[:, -1]  # (B, H)
        codes = np.zeros((B, N, D), dtype=np.int64)
        for cell in range(N):
            cell_codes = np.zeros((B, D), dtype=np.int64)
            for d in range(D):
                logits = self._run_rows("rq_head", {"hidden": hidden, "codes": cell_codes,
                                                    "pos": np.array(d, dtype=np.int64)}, chunks, head_caches)["logits"]
                for r in plan.rows:
                    mixed = (cfg_mix(logits[r.both], r.cfg_scale) if r.uncond is not None else logits[r.cond])
                    tok = sample(mixed, r.sampling, r.rng)
                    cell_codes[r.cond, d] = tok
                    if r.uncond is not None:
                        cell_codes[r.uncond, d] = tok
            codes[:, cell] = cell_codes
            if progress:
                progress(cell + 1, N)
            if cell + 1 < N:
                emb = self._run_rows("connector", {"codes": cell_codes[:, None]}, chunks)["embeds"]  # (B, 1, H)
                hidden = self._step_rows(emb, caches, P + 1 + cell, start, "gen_branch", chunks)[:, -1]
        return [codes[r.cond] for r in plan.rows]

    def draw_batch(self, requests: Sequence[DrawRequest]) -> list[list[np.ndarray]]:
        """Images (H, W, 3) uint8 for several prompts drawn as one batch: n_r per request, in order."""
        # decoded per request: the decoder is cheap, and its output then cannot depend on batch-mates
        return [self.decode(c) for c in self.draw_codes_batch(requests)]

    def check_draw_request(self, q: DrawRequest) -> tuple[list[int], Sampling]:
        """A drawing request's prompt ids and sampling, or the InputError that says what is wrong
        (a server checks each request with this before batching it with others)."""
        if not isinstance(q, DrawRequest):
            raise InputError(f"a drawing request must be a DrawRequest, not {type(q).__name__}")
        self.check_n(q.n, q.settings)
        limits.seed(q.seed)
        s = q.settings
        sampling = Sampling(s.temperature, s.top_k, s.top_p)
        return self.draw_prompt_ids(q.prompt), sampling

    def check_n(self, n, settings: DrawSettings, prompt_tokens: int = 0) -> int:
        """The number of images per prompt: an integer >= 1 whose buffers fit in memory."""
        if isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n < 1:
            raise InputError(f"--n {n}: the number of images must be >= 1")
        n = limits.integer(n, "--n (images per prompt)", 1, 2**62)
        rows = 2 * n if settings.cfg_scale != 1.0 else n
        self._check_memory(rows, prompt_tokens + 1, "gen_branch", n, f"--n {n} ({rows} rows with guidance)"
                           if rows > n else f"--n {n}", "draw fewer images per call (a smaller --n)")
        return n

    def _check_memory(self, rows: int, prefill: int, branch: str, images: int, what: str, fix: str) -> None:
        """Refuse a call whose KV buffers and largest activations would not fit in memory."""
        item = 2 if self.bundle.float_dtype == "float16" else 4
        g = self.bundle.graphs
        need = sum(limits.kv_bytes(g[name].kv, rows, item) for name in ("trunk", branch))
        need += limits.kv_bytes(g["rq_head"].kv, rows, item) if branch == "gen_branch" else 0
        need += limits.attention_bytes(self.cfg, rows, prefill, self.bundle.max_seq, item)
        need += limits.image_bytes(self.cfg, images, item) + rows * self.cfg.image.num_cells * 64
        limits.check_memory(limits.Estimate(need, what), self.memory_limit, fix)

    def draw_prompt_ids(self, prompt: str) -> list[int]:
        """Token ids of a drawing prompt, checked: not empty, drawable, and it fits max_seq with the image."""
        if not isinstance(prompt, str):
            raise InputError(f"a prompt must be a string, not {type(prompt).__name__}")
        if not prompt.strip():
            raise InputError("the prompt is empty: say what to draw, e.g. \"a red circle\"")
        ids = self.encode_text(prompt)
        if not self.prompting.plain_draw:  # the model's template, tokenised whole as its training did
            ids = self.template_ids(self.prompting.draw_text(prompt))
        # letters, digits or symbols: a prompt of invisible or format characters (a zero-width
        # space, a direction mark) would be drawn silently as the null prompt
        if not any(unicodedata.category(c)[0] in "LNS" for c in prompt):
            raise InputError(f"the prompt {prompt!r} has no letters, digits or symbols to draw: say what to draw, "
                             "e.g. \"a red circle\"")
        N, S = self.cfg.image.num_cells, self.bundle.max_seq
        if len(ids) + N > S:
            raise InputError(f"the prompt is {len(ids)} tokens; with {N} image cells it needs {len(ids) + N} "
                             f"positions but max_seq is {S}: shorten it or re-export with --max-seq {len(ids) + N + 64}")
        neg = len(self.negative_ids)  # the unconditional rows share the prompt's length
        if neg + N > S:
            raise InputError(f"the bundle's negative prompt is {neg} tokens; with {N} image cells it needs {neg + N} "
                             f"positions but max_seq is {S}: re-export with --max-seq {neg + N + 64}")
        return ids

    def decode(self, codes: np.ndarray) -> list[np.ndarray]:
        """codes (n, N, D), integers in [0, codebook_size) -> n images (P, P, 3) uint8 (none for n = 0)."""
        im = self.cfg.image
        codes = np.asarray(codes)
        if codes.dtype.kind not in "iu":
            raise InputError(f"image codes must be integers, not {codes.dtype}")
        if codes.ndim != 3 or codes.shape[1:] != (im.num_cells, im.depth):
            raise InputError(f"image codes must have shape (images, {im.num_cells}, {im.depth}), not {codes.shape}")
        if not len(codes):
            return []
        if codes.min() < 0 or codes.max() >= im.codebook_size:
            raise InputError(f"image codes must lie in [0, {im.codebook_size}): got {codes.min()} to {codes.max()}")
        codes = codes.astype(np.int64, copy=False)
        chunks = self._chunks(len(codes), self.backend.decode_batch)
        pixels = self._run_rows("vision_decoder", {"codes": codes}, chunks)["pixels"]
        return [uint8_from_pixels(p) for p in pixels]

    def draw(self, prompts: Sequence[str], n: int = 1, seed: int = 0, progress: bool = False,
             **settings) -> list[np.ndarray]:
        """Images (H, W, 3) uint8: n per prompt, in prompt order."""
        if isinstance(prompts, str):
            prompts = [prompts]
        if not isinstance(prompts, (list, tuple)) or not prompts:
            raise InputError(f"prompts must be a non-empty list of strings, not {type(prompts).__name__} "
                             f"{str(prompts)[:40]!r}")
        s = DrawSettings.for_bundle(self.bundle, **settings)  # bad settings fail before any work starts
        seed = limits.seed(seed)
        for prompt in prompts:
            self.check_n(n, s, len(self.draw_prompt_ids(prompt)))
        out = []
        for i, prompt in enumerate(prompts):
            bar = _bar(prompt, self.cfg.image.num_cells) if progress else None
            try:
                codes = self.draw_codes(prompt, n, s, limits.seed_for(seed, i),
                                        bar.update_to if bar is not None else None)
            finally:
                if bar is not None:
                    bar.close()
            out.extend(self.decode(codes))
        return out


def _bar(prompt: str, total: int):
    from tqdm import tqdm

    class Bar(tqdm):
        def update_to(self, done, total):
            self.update(done - self.n)

    return Bar(desc=prompt[:30], total=total, unit="cell", leave=False)

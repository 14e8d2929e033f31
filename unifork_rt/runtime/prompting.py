"""How a bundle's model wants its inputs: prompt templates, the guidance prompt, image preprocessing.

The manifest's optional "prompting" section (written by `unifork-rt export` from the model
folder's prompting.json, which `unifork-rt convert` writes for official UniFork checkpoints):

    caption_prefix   text before <BOI> image <EOI> in an understanding sequence ("" for ours)
    caption_suffix   text after it; "{prompt}" is the user's instruction
    draw_template    the drawing prompt's text; "{prompt}" is the user's prompt
    negative_prompt  the unconditional rows' prompt (through draw_template); null: the null prompt
    image            {"resize": "stretch" | "pad", "pad_fill": [r, g, b], "mean": [...], "std": [...]}

The recommended sampling sits in the manifest's "sampling" section as before. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelFolderError

KEYS = ("caption_prefix", "caption_suffix", "draw_template", "negative_prompt", "image")
RESIZES = ("stretch", "pad")


@dataclass(frozen=True)
class Prompting:
    caption_prefix: str = ""
    caption_suffix: str = "{prompt}"
    draw_template: str = "{prompt}"
    negative_prompt: str | None = None
    resize: str = "stretch"  # stretch: resized as is; pad: centred on a square of pad_fill first
    pad_fill: tuple[int, int, int] = (127, 127, 127)

    @property
    def pad(self) -> tuple[int, int, int] | None:
        """The fill colour when images are padded to square, else None."""
        return self.pad_fill if self.resize == "pad" else None

    def caption_text(self, prompt: str) -> str:
        return self.caption_suffix.replace("{prompt}", prompt)

    def draw_text(self, prompt: str) -> str:
        return self.draw_template.replace("{prompt}", prompt)

    @property
    def plain_draw(self) -> bool:
        return self.draw_template == "{prompt}"

    @classmethod
    def from_manifest(cls, manifest: dict, where: str = "manifest.json") -> "Prompting":
        return cls.from_dict(manifest.get("prompting"), where)

    @classmethod
    def from_dict(cls, d, where: str = "manifest.json") -> "Prompting":
        """Checked: a wrong field raises ModelFolderError naming it."""
        if d is None:
            return cls()

        def bad(field: str, problem: str) -> ModelFolderError:
            return ModelFolderError(f"{where}: prompting.{field} {problem}; re-export the bundle with "
                                    "`unifork-rt export`")

        if not isinstance(d, dict):
            raise ModelFolderError(f"{where}: prompting must be an object, not {type(d).__name__}")
        unknown = sorted(set(d) - set(KEYS))
        if unknown:
            raise bad(unknown[0], f"is not a prompting field ({', '.join(KEYS)})")
        out = {}
        for key in ("caption_prefix", "caption_suffix", "draw_template"):
            if key in d:
                if not isinstance(d[key], str) or len(d[key]) > 4000:
                    raise bad(key, "must be a string of at most 4000 characters")
                out[key] = d[key]
        for key in ("caption_suffix", "draw_template"):
            if key in out and out[key].count("{prompt}") != 1:
                raise bad(key, "must hold {prompt} exactly once")
        neg = d.get("negative_prompt")
        if neg is not None and (not isinstance(neg, str) or not neg.strip() or len(neg) > 4000):
            raise bad("negative_prompt", "must be null or a non-empty string of at most 4000 characters")
        out["negative_prompt"] = neg
        image = d.get("image") or {}
        if not isinstance(image, dict):
            raise bad("image", "must be an object")
        resize = image.get("resize", "stretch")
        if resize not in RESIZES:
            raise bad("image.resize", f"is {resize!r}; valid: {', '.join(RESIZES)}")
        fill = image.get("pad_fill", [127, 127, 127])
        if not (isinstance(fill, list) and len(fill) == 3 and all(type(v) is int and 0 <= v <= 255 for v in fill)):
            raise bad("image.pad_fill", "must be three integers in [0, 255]")
        for key in ("mean", "std"):  # the runtime's pixels are x / 127.5 - 1: mean and std 0.5 exactly
            if image.get(key, [0.5] * 3) != [0.5] * 3:
                raise bad(f"image.{key}", "must be [0.5, 0.5, 0.5] (pixels in [-1, 1]); other "
                          "normalisations are not supported")
        return cls(**out, resize=resize, pad_fill=tuple(fill))

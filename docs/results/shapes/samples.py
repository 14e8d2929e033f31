"""Regenerate samples.png and the README's draw -> caption table with the bundled model.

    python docs/results/shapes/samples.py

Each prompt is drawn with `unifork-rt draw PROMPT --seed i` settings (the model's defaults),
then the same model captions its own drawing. Prints the markdown table for the README.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from unifork_rt.runtime.images import pixels_from_uint8
from unifork_rt.runtime.pipeline import UniForkRuntime

PROMPTS = ["a red circle", "three blue squares", "a triangle left of a circle", "a circle above a square",
           "a green triangle", "a yellow square and a purple circle", "two circles", "a orange triangle below a square"]
SCALE = 3


def main() -> None:
    rt = UniForkRuntime()
    rows, tiles = [], []
    for i, prompt in enumerate(PROMPTS):
        image = rt.draw([prompt], seed=i)[0]
        caption = rt.caption([pixels_from_uint8(image)])[0]
        rows.append(f"| {prompt} | {caption} |")
        tiles.append(np.asarray(Image.fromarray(image).resize((64 * SCALE, 64 * SCALE), Image.Resampling.NEAREST)))
    gap = np.full((64 * SCALE, 4, 3), 160, np.uint8)  # grey: the canvases are white
    strip = np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1)
    out = Path(__file__).with_name("samples.png")
    Image.fromarray(strip).save(out)
    print("| prompt given to `draw` | caption the model gives its own drawing |\n|---|---|")
    print("\n".join(rows))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

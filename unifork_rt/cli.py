"""The `unifork-rt` command line.

Runtime commands (caption, draw) need no torch; model commands (init, train, export, info
--preset) import it lazily and say which extra to install when it is missing. A user error
(`UniforkError`) prints one line and exits with status 2, without a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .errors import UniforkError


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UniforkError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="unifork-rt")
def main():
    """unifork-rt: run, train, export and benchmark Y-shaped UniFork models.

    \b
    Quick start with the bundled ShapesWorld model (no torch needed):
      unifork-rt draw "a red circle left of a blue square" -o out.png
      unifork-rt caption out.png
    """


@main.command()
@click.argument("model_dir", required=False, type=click.Path(path_type=Path))
@click.option("--preset", help="Count a preset's parameters instead of a model folder's (micro, shapes, paper).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def info(model_dir, preset, as_json):
    """Parameter counts per component and active parameters per task.

    Give a MODEL_DIR (config.json + model.safetensors) or --preset NAME.
    """
    from . import params
    from .config import ModelConfig
    from .config import preset as get_preset

    if (model_dir is None) == (preset is None):
        raise click.UsageError("give either MODEL_DIR or --preset NAME")
    if preset is not None:
        cfg = get_preset(preset)
        shapes, title = params.preset_shapes(cfg), f"preset {preset}"
    else:
        cfg = ModelConfig.load(model_dir / "config.json")
        shapes, title = params.safetensors_shapes(model_dir / "model.safetensors"), str(model_dir)
    s = params.summary(cfg, params.count(shapes))
    click.echo(json.dumps(s, indent=2) if as_json else params.format_summary(cfg, s, title))


@main.command()
@click.option("--from-qwen", "qwen_dir", required=True, type=click.Path(path_type=Path),
              help="A local Hugging Face Qwen2/Qwen2.5 folder (config.json, *.safetensors, tokenizer.json).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The UniFork model folder to write.")
@click.option("--shared-layers", type=int, default=None,
              help="Trunk depth N: layers [0, N) are shared, [N, L) are copied into both branches. Default L/2.")
@click.option("--image-preset", default="paper", show_default=True,
              help="Preset whose image tokenizer and depth head are freshly initialised (micro, shapes, paper).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the new components.")
def init(qwen_dir, out, shared_layers, image_preset, seed):
    """Build a UniFork checkpoint from a local Qwen2 folder (no download)."""
    from .config import preset as get_preset
    from .errors import require

    require("torch", "train", "unifork-rt init")
    from .model.qwen import init_from_qwen

    p = get_preset(image_preset)
    folder = init_from_qwen(qwen_dir, out, shared_layers, image=p.image, head=p.head, seed=seed)
    click.echo(f"wrote {folder}")


if __name__ == "__main__":
    main()

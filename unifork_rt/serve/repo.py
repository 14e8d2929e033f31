"""A Triton model repository for a bundle: three Python-backend models that run UniForkRuntime.

    DIR/caption/config.pbtxt          dynamic batching: the queued requests' images caption as one batch
    DIR/caption/1/model.py            one line: the model's code is in the installed unifork-rt
    DIR/caption_stream/...            decoupled: one response per generated token
    DIR/draw/...                      dynamic batching: different prompts draw as one batch

The same files serve on this machine (`unifork-rt serve`) and in NVIDIA's Triton container on a
GPU (docs/SERVING.md). The tensor names and shapes below are the contract clients rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..io import atomic_write_text
from ..runtime.backend import BACKENDS, DEFAULT_BACKEND
from ..runtime.bundle import load_bundle

# Bounds, far above any useful setting, so a typo cannot reach config.pbtxt.
MAX_INSTANCES, MAX_THREADS, MAX_BATCH, MAX_GPU_ID = 1024, 1024, 65536, 1023
MAX_QUEUE_DELAY_US = 60_000_000

MODELS = {"caption": "CaptionModel", "caption_stream": "CaptionStreamModel", "draw": "DrawModel"}


@dataclass(frozen=True)
class RepoSettings:
    bundle: str = ""  # the path the server will see; "" = the model bundled with the installed unifork-rt
    backend: str = DEFAULT_BACKEND
    instances: int = 1  # per model (and per GPU with kind "gpu"): each is its own process
    max_batch: int = 8  # requests per batch; a draw request of n images takes 2n rows with CFG
    queue_delay_us: int = 5000  # how long a request may wait for batch-mates
    threads: int = 0  # ONNX Runtime threads per instance; 0 = its default (all cores)
    kind: str = "cpu"  # "gpu": instance groups on the GPUs below (Triton's KIND_GPU)
    gpus: tuple[int, ...] = ()  # with kind "gpu": which GPUs (none = all that Triton sees)

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise InputError(f"unknown backend {self.backend!r}; valid backends: {', '.join(BACKENDS)}")
        if not 1 <= self.instances <= MAX_INSTANCES:
            raise InputError(f"--instances {self.instances} must be in [1, {MAX_INSTANCES}] (each is a process)")
        if not 0 <= self.threads <= MAX_THREADS:
            raise InputError(f"--threads {self.threads} must be in [0, {MAX_THREADS}] (0 = ONNX Runtime's default)")
        if not 0 <= self.queue_delay_us <= MAX_QUEUE_DELAY_US:
            raise InputError(f"--queue-delay-us {self.queue_delay_us} must be in [0, {MAX_QUEUE_DELAY_US}] "
                             "(microseconds: at most a minute)")
        if self.threads and not self.backend.startswith("ort-"):
            raise InputError(f"--threads sets ONNX Runtime's threads; backend {self.backend} has none")
        if not 1 <= self.max_batch <= MAX_BATCH:
            raise InputError(f"--max-batch {self.max_batch} must be in [1, {MAX_BATCH}]")
        if self.kind not in ("cpu", "gpu"):
            raise InputError(f"instance kind {self.kind!r} must be cpu or gpu")
        if any(not 0 <= g <= MAX_GPU_ID for g in self.gpus) or len(set(self.gpus)) != len(self.gpus):
            raise InputError(f"--gpus {','.join(map(str, self.gpus))}: give distinct GPU ids in [0, {MAX_GPU_ID}], "
                             "e.g. 0,1")
        if self.kind == "cpu" and self.backend != "ort-cpu":
            raise InputError(f"backend {self.backend} runs on a GPU: give --gpus (Triton's KIND_GPU instances)")


def pbtxt_string(text: str) -> str:
    """TEXT as a quoted protobuf text-format string: quotes, backslashes and control characters
    escaped (octal, as protobuf reads them), so a value such as a --bundle-path cannot end the
    string and add fields of its own; the undecodable bytes of a file name (surrogate escapes) too."""
    out = []
    for c in text:
        code = ord(c)
        if c in '"\\':
            out.append("\\" + c)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\{code:03o}")
        elif 0xDC80 <= code <= 0xDCFF:  # a byte of a file name that is not UTF-8
            out.append(f"\\{code - 0xDC00:03o}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _tensor(name: str, dtype: str, dims: str, optional: bool = False) -> str:
    return f'  {{ name: "{name}" data_type: {dtype} dims: [ {dims} ]{" optional: true" if optional else ""} }}'


def _io(kind: str, tensors: list[str]) -> str:
    return f"{kind} [\n" + ",\n".join(tensors) + "\n]\n"


def config_text(model: str, s: RepoSettings, image_size: int) -> str:
    """config.pbtxt for one of MODELS."""
    image = [_tensor("image", "TYPE_STRING", "1"),  # the bytes of an image file
             _tensor("prompt", "TYPE_STRING", "1", True), _tensor("max_new_tokens", "TYPE_INT32", "1", True)]
    if model == "caption":
        body = (f"max_batch_size: {s.max_batch}\n" + _io("input", image)
                + _io("output", [_tensor("caption", "TYPE_STRING", "1")])
                + f"dynamic_batching {{ max_queue_delay_microseconds: {s.queue_delay_us} }}\n")
    elif model == "caption_stream":
        body = ("max_batch_size: 0\nmodel_transaction_policy { decoupled: true }\n" + _io("input", image)
                + _io("output", [_tensor("text", "TYPE_STRING", "1"), _tensor("token_id", "TYPE_INT64", "1")]))
    elif model == "draw":
        P = image_size
        body = (f"max_batch_size: {s.max_batch}\n"
                + _io("input", [_tensor("prompt", "TYPE_STRING", "1"), _tensor("seed", "TYPE_INT64", "1", True),
                                _tensor("n", "TYPE_INT32", "1", True), _tensor("cfg_scale", "TYPE_FP32", "1", True),
                                _tensor("temperature", "TYPE_FP32", "1", True),
                                _tensor("top_k", "TYPE_INT32", "1", True), _tensor("top_p", "TYPE_FP32", "1", True)])
                + _io("output", [_tensor("image", "TYPE_UINT8", f"-1, {P}, {P}, 3"), _tensor("png", "TYPE_STRING", "-1")])
                + f"dynamic_batching {{ max_queue_delay_microseconds: {s.queue_delay_us} }}\n")
    else:
        raise ValueError(f"unknown model {model!r}; models: {', '.join(MODELS)}")
    group = f"count: {s.instances} kind: KIND_{s.kind.upper()}"
    if s.kind == "gpu" and s.gpus:
        group += f" gpus: [ {', '.join(map(str, s.gpus))} ]"
    params = "".join(f'parameters {{ key: "{k}" value: {{ string_value: {pbtxt_string(str(v))} }} }}\n'
                     for k, v in (("bundle", s.bundle), ("backend", s.backend), ("threads", s.threads)))
    return (f'name: "{model}"\nbackend: "python"\n' + body + f"instance_group [ {{ {group} }} ]\n" + params)


MODEL_PY = '''# Written by `unifork-rt repo`: the model's code is in the installed unifork-rt package
# (pip install 'unifork-rt[serve]' where Triton's Python backend runs; see docs/SERVING.md).
from unifork_rt.serve.models import {cls} as TritonPythonModel  # noqa: F401
'''


def write_repository(out: str | Path, settings: RepoSettings, bundle_dir: str | Path | None = None) -> Path:
    """Write the model repository into `out` (created; existing model folders are replaced).

    bundle_dir: the bundle to check here (None = the bundled model); settings.bundle is the path
    the server will open, which differs when the repository moves into a container."""
    if bundle_dir is None:
        from .. import assets

        bundle_dir = assets.default_model_dir()
    bundle = load_bundle(bundle_dir, verify=False)  # a bad bundle fails here, not in every model instance
    out = Path(out)
    for model, cls in MODELS.items():
        atomic_write_text(out / model / "config.pbtxt", config_text(model, settings, bundle.config.image.image_size))
        atomic_write_text(out / model / "1" / "model.py", MODEL_PY.format(cls=cls))
    return out

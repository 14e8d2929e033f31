"""Engine fingerprints: what each engine was built from and for, in a JSON sidecar beside it.

A serialized TensorRT engine runs only under the TensorRT version that built it, on the GPU
model it was built for, and it bakes in the graph, the precision flags and the optimization
profiles. Loading a stale engine fails deep inside TensorRT or, worse, silently runs an old
graph. So every NAME.engine gets NAME.engine.json:

    {"format": 1, "graph": "trunk", "graph_sha256": "...",        <- from the bundle manifest
     "tensorrt": "10.3.0", "gpu": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0",
     "flags": {"fp16": true, "tf32": true, "max_batch": 8, "max_seq": 512,
               "workspace_gb": 4.0},
     "profiles": [{"name": "prefill", "shapes": {...}}, ...],
     "engine_sha256": "...", "engine_bytes": 123}                  <- the engine file itself

`check_engine` compares a sidecar with what the caller expects. At build time that is every
field (a flag change rebuilds); at load time it is the environment and the graph hash only
(the runtime takes whatever flags the engine was built with).
Pure functions apart from reading and writing the sidecar; no TensorRT here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import UniforkError
from ..io import atomic_write_text

FINGERPRINT_FORMAT = 1
SIDECAR_SUFFIX = ".json"
# the fields that say which machine and graph an engine belongs to (checked at load time)
ENVIRONMENT_KEYS = ("graph", "graph_sha256", "tensorrt", "gpu", "compute_capability")


class StaleEngineError(UniforkError):
    """An engine that does not match its graph, TensorRT, GPU or build flags: rebuild it."""


@dataclass(frozen=True)
class BuildFlags:
    fp16: bool = False
    tf32: bool = True  # TensorRT's default for fp32 layers on Ampere+; off for strict fp32 parity
    max_batch: int = 2
    max_seq: int = 0  # longest prefill the engines accept; 0: the bundle's max_seq
    workspace_gb: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def make_fingerprint(graph: str, graph_sha256: str, tensorrt_version: str, gpu_name: str,
                     compute_capability, flags: BuildFlags | None = None, profiles=None) -> dict:
    """The expected fingerprint of one engine. compute_capability: (major, minor) or "8.6".
    Without flags/profiles it describes only the environment (what a runtime can know)."""
    cc = ".".join(str(v) for v in compute_capability) if isinstance(compute_capability, (tuple, list)) \
        else str(compute_capability)
    fp = {"format": FINGERPRINT_FORMAT, "graph": graph, "graph_sha256": graph_sha256,
          "tensorrt": str(tensorrt_version), "gpu": str(gpu_name), "compute_capability": cc}
    if flags is not None:
        fp["flags"] = flags.to_dict()
    if profiles is not None:
        fp["profiles"] = [p if isinstance(p, dict) else p.to_dict() for p in profiles]
    return fp


def sidecar_path(engine_path: str | Path) -> Path:
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + SIDECAR_SUFFIX)


def write_sidecar(engine_path: str | Path, fp: dict, engine_data: bytes) -> Path:
    """Write NAME.engine.json (atomically) recording the fingerprint and the engine's own hash."""
    full = {**fp, "engine_sha256": hashlib.sha256(engine_data).hexdigest(), "engine_bytes": len(engine_data)}
    path = sidecar_path(engine_path)
    atomic_write_text(path, json.dumps(full, indent=1, sort_keys=True) + "\n")
    return path


def read_sidecar(engine_path: str | Path) -> dict | None:
    """The sidecar's fingerprint, or None when it is missing or unreadable."""
    path = sidecar_path(engine_path)
    try:
        fp = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return fp if isinstance(fp, dict) and fp.get("format") == FINGERPRINT_FORMAT else None


def differences(found: dict, expected: dict) -> list[str]:
    """What differs, field by field, for the fields `expected` has (human-readable)."""
    names = {"graph_sha256": "graph hash", "tensorrt": "TensorRT version", "gpu": "GPU",
             "compute_capability": "compute capability", "flags": "build flags", "profiles": "optimization profiles"}
    out = []
    for key, want in expected.items():
        got = found.get(key)
        if got == want:
            continue
        label = names.get(key, key)
        if key == "flags" and isinstance(got, dict) and isinstance(want, dict):
            changed = ", ".join(f"{k} {got.get(k)!r} -> {v!r}" for k, v in want.items() if got.get(k) != v)
            out.append(f"{label}: {changed}")
        elif key == "graph_sha256":
            out.append(f"{label}: built from {str(got)[:12]}, the bundle has {str(want)[:12]}")
        elif key == "profiles":
            out.append(f"{label} differ")
        else:
            out.append(f"{label}: built for {got!r}, now {want!r}")
    return out


def check_engine(engine_path: str | Path, expected: dict, engine_data: bytes | None = None,
                 rebuild: str = "unifork-rt build BUNDLE --out ENGINES") -> dict:
    """Return the engine's fingerprint if it matches `expected`; raise StaleEngineError otherwise.

    engine_data: the engine's bytes when the caller has read them, to check the recorded hash
    (a truncated or replaced engine file); rebuild: the command to suggest.
    """
    engine_path = Path(engine_path)
    if not engine_path.is_file():
        raise StaleEngineError(f"{engine_path} is missing: build the engines with `{rebuild}`")
    found = read_sidecar(engine_path)
    if found is None:
        raise StaleEngineError(f"{sidecar_path(engine_path)} is missing or unreadable, so nothing says what "
                               f"{engine_path.name} was built from: rebuild it with `{rebuild}`")
    reasons = differences(found, expected)
    if engine_data is not None and found.get("engine_sha256") != hashlib.sha256(engine_data).hexdigest():
        reasons.append("the engine file does not match the hash in its sidecar (truncated or replaced)")
    if reasons:
        raise StaleEngineError(f"{engine_path} is stale ({'; '.join(reasons)}): rebuild it with `{rebuild}`")
    return found

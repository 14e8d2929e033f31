"""The Python-backend models Triton runs: thin adapters from `triton_python_backend_utils`
to `handlers` (which hold the logic and are tested without Triton).

Imported only inside Triton's Python-backend stub, where `triton_python_backend_utils`
exists; each model's `1/model.py` in the repository is one import line of this module.
Each model instance is its own stub process with its own `UniForkRuntime`: a request's KV
caches stay inside one instance (Triton's implicit state and ensembles cannot run our decode
loop).
"""

from __future__ import annotations

import json
import os
import traceback

import triton_python_backend_utils as pb_utils

from ..errors import UniforkError
from ..runtime.backend import DEFAULT_BACKEND
from ..runtime.pipeline import UniForkRuntime
from . import handlers


class _Model:
    inputs: tuple[str, ...] = ()

    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        if args.get("model_instance_kind") == "GPU":
            # every instance is its own stub process: pin it to the GPU Triton gave it before the
            # backend initialises CUDA (our backends always use the first visible device)
            os.environ["CUDA_VISIBLE_DEVICES"] = str(args["model_instance_device_id"])
        self.name = args["model_instance_name"]
        threads = int(params.get("threads") or 0)
        self.rt = UniForkRuntime(params.get("bundle") or None, backend=params.get("backend") or DEFAULT_BACKEND,
                                 **({"threads": threads} if threads else {}))
        pb_utils.Logger.log_info(f"{self.name}: {self.rt.bundle.root} on {', '.join(self.rt.providers)}")

    def finalize(self):
        self.rt.close()

    def _inputs(self, request) -> dict:
        out = {}
        for name in self.inputs:
            t = pb_utils.get_input_tensor_by_name(request, name)
            if t is not None:
                out[name] = t.as_numpy()
        return out

    def _error(self, e: Exception) -> pb_utils.TritonError:
        if isinstance(e, UniforkError):  # the client's to fix: HTTP 400 / gRPC INVALID_ARGUMENT
            return pb_utils.TritonError(str(e), pb_utils.TritonError.INVALID_ARG)
        # a bug, not the client's: log it whole, tell the client in one line, keep serving
        pb_utils.Logger.log_error(f"{self.name}: {''.join(traceback.format_exception(e))}")
        return pb_utils.TritonError(f"internal error in {self.name} ({type(e).__name__}: {e})")

    def _response(self, result) -> pb_utils.InferenceResponse:
        if isinstance(result, Exception):
            return pb_utils.InferenceResponse(error=self._error(result))
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(k, v) for k, v in result.items()])

    def _batch(self, handler, requests):
        try:
            results = handler(self.rt, [self._inputs(r) for r in requests])
        except Exception as e:  # noqa: BLE001 - every request of the batch gets the error, the model lives on
            results = [e] * len(requests)
        return [self._response(r) for r in results]


class CaptionModel(_Model):
    inputs = ("image", "prompt", "max_new_tokens")

    def execute(self, requests):
        return self._batch(handlers.caption_batch, requests)


class DrawModel(_Model):
    inputs = ("prompt", "seed", "n", "cfg_scale", "temperature", "top_k", "top_p")

    def execute(self, requests):
        return self._batch(handlers.draw_batch, requests)


class CaptionStreamModel(_Model):
    """Decoupled: one response per generated token, then an empty final one."""
    inputs = ("image", "prompt", "max_new_tokens")

    def execute(self, requests):
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        for request in requests:
            sender = request.get_response_sender()
            try:
                for outputs in handlers.caption_pieces(self.rt, self._inputs(request)):
                    sender.send(pb_utils.InferenceResponse(
                        output_tensors=[pb_utils.Tensor(k, v) for k, v in outputs.items()]))
            except Exception as e:  # noqa: BLE001 - this request's stream ends with its error
                sender.send(pb_utils.InferenceResponse(error=self._error(e)), flags=final)
                continue
            sender.send(flags=final)
        return None

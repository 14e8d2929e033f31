"""A small client for the served models over HTTP or gRPC (tritonclient), one request per call.

    >>> with ServeClient("127.0.0.1:8000", "http") as c:
    ...     c.caption([open("drawn.png", "rb").read()])          # ['a red circle']
    ...     images, pngs = c.draw(["a red circle"], seed=0)       # (1, n, 64, 64, 3) uint8, (1, n) PNG bytes

Any client that speaks Triton's protocol works the same way; the tensor names are in
docs/SERVING.md. A failed request raises tritonclient's InferenceServerException with the
server's one-line message.
"""

from __future__ import annotations

import queue
from typing import Iterator, Sequence

import numpy as np

PROTOCOLS = ("http", "grpc")


class ServeClient:
    def __init__(self, url: str, protocol: str = "http", timeout_s: float = 120.0):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
        from ..errors import require

        self.protocol, self.timeout_s = protocol, timeout_s
        self.mod = require(f"tritonclient.{protocol}", "serve", "the serving client")
        if protocol == "http":
            self.client = self.mod.InferenceServerClient(url, connection_timeout=timeout_s, network_timeout=timeout_s)
        else:
            self.client = self.mod.InferenceServerClient(url)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "ServeClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _input(self, name: str, values: np.ndarray, datatype: str):
        t = self.mod.InferInput(name, list(values.shape), datatype)
        t.set_data_from_numpy(values)
        return t

    def _column(self, name: str, values, dtype, datatype: str, k: int):
        if values is None:
            return []
        values = list(values) if isinstance(values, (list, tuple)) else [values] * k
        return [self._input(name, np.array(values, dtype=dtype).reshape(k, 1), datatype)]

    def _infer(self, model: str, inputs: list, outputs: Sequence[str]):
        kw = {"client_timeout": self.timeout_s} if self.protocol == "grpc" else {}
        result = self.client.infer(model, inputs, outputs=[self.mod.InferRequestedOutput(o) for o in outputs], **kw)
        return [result.as_numpy(o) for o in outputs]

    def caption(self, images: Sequence[bytes], prompt: str | None = None,
                max_new_tokens: int | None = None) -> list[str]:
        """Encoded image files -> one caption each (one request of len(images) rows)."""
        k = len(images)
        inputs = [self._input("image", np.array([[b] for b in images], dtype=object), "BYTES")]
        inputs += self._column("prompt", None if prompt is None else prompt.encode(), object, "BYTES", k)
        inputs += self._column("max_new_tokens", max_new_tokens, np.int32, "INT32", k)
        (out,) = self._infer("caption", inputs, ["caption"])
        return [v.decode("utf-8") for v in out.reshape(-1)]

    def draw(self, prompts: Sequence[str], seed=None, n: int | None = None, cfg_scale=None, temperature=None,
             top_k=None, top_p=None) -> tuple[np.ndarray, np.ndarray]:
        """Prompts -> images (k, n, H, W, 3) uint8 and PNGs (k, n); a setting is one value or one per prompt."""
        k = len(prompts)
        inputs = [self._input("prompt", np.array([[p.encode("utf-8")] for p in prompts], dtype=object), "BYTES")]
        inputs += self._column("seed", seed, np.int64, "INT64", k)
        inputs += self._column("n", n, np.int32, "INT32", k)
        for name, value in (("cfg_scale", cfg_scale), ("temperature", temperature), ("top_p", top_p)):
            inputs += self._column(name, value, np.float32, "FP32", k)
        inputs += self._column("top_k", top_k, np.int32, "INT32", k)
        image, png = self._infer("draw", inputs, ["image", "png"])
        return image, png

    def caption_stream(self, image: bytes, prompt: str | None = None,
                       max_new_tokens: int | None = None) -> Iterator[str]:
        """One image's caption piece by piece (gRPC streaming: one response per token)."""
        if self.protocol != "grpc":
            raise ValueError("caption_stream is a decoupled model: use protocol grpc")
        inputs = [self._input("image", np.array([image], dtype=object), "BYTES")]
        if prompt is not None:
            inputs.append(self._input("prompt", np.array([prompt.encode()], dtype=object), "BYTES"))
        if max_new_tokens is not None:
            inputs.append(self._input("max_new_tokens", np.array([max_new_tokens], dtype=np.int32), "INT32"))
        responses: queue.Queue = queue.Queue()
        self.client.start_stream(callback=lambda result, error: responses.put((result, error)))
        try:
            self.client.async_stream_infer("caption_stream", inputs, enable_empty_final_response=True)
            while True:
                result, error = responses.get(timeout=self.timeout_s)
                if error is not None:
                    raise error
                final = result.get_response().parameters.get("triton_final_response")
                if final is not None and final.bool_param:
                    return
                yield result.as_numpy("text")[0].decode("utf-8")
        finally:
            self.client.stop_stream()

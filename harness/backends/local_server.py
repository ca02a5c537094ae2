"""A small OpenAI-compatible HTTP server in front of any :class:`Generator` (loopback only).

Why: lanes that talk HTTP (AgentDojo agents, the OpenAI-compatible backend,
latency gates that must include a real network hop) need a server here, where
there is no vLLM and no network.  This serves a local model — usually an
:class:`~harness.backends.hf.HFGenerator` on a tiny build — on ``127.0.0.1``:

* ``GET /v1/models`` — the model, plus ``harness_identity`` (full digests), which
  :class:`~harness.backends.openai_compat.OpenAICompatGenerator` adopts;
* ``POST /v1/chat/completions`` and ``POST /v1/completions`` — non-streaming.

Requests that arrive together are served in one batch (up to
``max_batch`` requests collected for ``batch_window_s``), so concurrent clients
get batched generation like a real inference server.  Binding anything but a
loopback address is refused: this server has no authentication.

Command line::

    python -m harness.backends.local_server --model ./models/tiny-code --port 8011
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.backends.base import (
    Generation,
    GenerationRequest,
    Generator,
    Message,
    SamplingParams,
    ToolCall,
)
from harness.errors import BackendError, HarnessError

__all__ = ["LocalServer", "main", "parse_openai_request", "serve"]

_OPENAI_FINISH = {"stop": "stop", "length": "length", "tool_call": "tool_calls"}


def parse_openai_request(
    body: dict[str, Any], *, chat: bool, default_max_tokens: int = 16
) -> GenerationRequest:
    """OpenAI request JSON → :class:`GenerationRequest` (raises ValueError on bad input).

    ``default_max_tokens`` applies when the client sends neither ``max_tokens``
    nor ``max_completion_tokens`` (OpenAI's legacy completions default is 16;
    AgentDojo's local LLM sends none and needs room for a tool call).
    """
    sampling = SamplingParams(
        temperature=float(body.get("temperature", 1.0)),
        top_p=float(body.get("top_p", 1.0)),
        max_tokens=int(
            body.get("max_tokens") or body.get("max_completion_tokens") or default_max_tokens
        ),
        n=int(body.get("n", 1)),
        seed=int(body.get("seed") or 0),
        stop=tuple([body["stop"]] if isinstance(body.get("stop"), str) else body.get("stop") or ()),
    )
    rid = f"srv-{uuid.uuid4().hex[:12]}"
    if not chat:
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise ValueError("field 'prompt' must be a string (batched prompts unsupported)")
        return GenerationRequest(request_id=rid, prompt=prompt, sampling=sampling)
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise ValueError("field 'messages' must be a non-empty list")
    msgs = []
    for m in raw:
        calls = []
        for tc in m.get("tool_calls") or []:
            fn = tc.get("function", tc)
            args = fn.get("arguments", {})
            calls.append(
                ToolCall(
                    name=fn["name"], arguments=json.loads(args) if isinstance(args, str) else args
                )
            )
        msgs.append(
            Message(role=m["role"], content=m.get("content") or "", tool_calls=tuple(calls))
        )
    return GenerationRequest(
        request_id=rid,
        messages=tuple(msgs),
        tools=tuple(body.get("tools") or ()),
        sampling=sampling,
    )


def _response(gen: Generation, *, chat: bool, model: str) -> dict[str, Any]:
    choices: list[dict[str, Any]] = []
    for i, (text, fin) in enumerate(zip(gen.texts, gen.finish_reasons, strict=True)):
        c: dict[str, Any] = {"index": i, "finish_reason": _OPENAI_FINISH.get(fin, "stop")}
        if chat:
            c["message"] = {"role": "assistant", "content": text}
        else:
            c["text"] = text
        choices.append(c)
    completion = sum(gen.completion_tokens) if gen.completion_tokens else 0
    return {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:16]}",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": gen.prompt_tokens or 0,
            "completion_tokens": completion,
            "total_tokens": (gen.prompt_tokens or 0) + completion,
        },
    }


class _Batcher:
    """Collects requests from handler threads and runs them through the generator in batches."""

    def __init__(self, generator: Generator, *, max_batch: int, window_s: float) -> None:
        self.generator = generator
        self.max_batch = max_batch
        self.window_s = window_s
        self.inbox: queue.Queue[tuple[GenerationRequest, Future[Generation]] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="local-server-batcher", daemon=True)
        self.thread.start()

    def submit(self, req: GenerationRequest) -> Future[Generation]:
        fut: Future[Generation] = Future()
        self.inbox.put((req, fut))
        return fut

    def stop(self) -> None:
        self.inbox.put(None)
        self.thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            first = self.inbox.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.window_s
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self.inbox.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                gens = self.generator.generate([r for r, _ in batch])
                for (_, fut), gen in zip(batch, gens, strict=True):
                    fut.set_result(gen)
            except Exception as exc:  # delivered to every waiting handler
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
            if stop:
                return


def _require_loopback(host: str) -> None:
    """Refuse any bind address but loopback: the server has no authentication."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise BackendError(
            f"local_server: refusing to bind {host!r}; it has no authentication, so only "
            "loopback addresses (127.0.0.1, ::1) are allowed"
        )


class _OpenAIHandler(BaseHTTPRequestHandler):
    """The HTTP side of :class:`LocalServer`; :meth:`LocalServer.__init__` binds ``local``."""

    protocol_version = "HTTP/1.1"
    local: LocalServer

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: tests and CLIs print their own progress

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, status: int, message: str) -> None:
        error = {"message": message, "type": "invalid_request_error", "code": status}
        self._send(status, {"error": error})

    def do_GET(self) -> None:
        if self.path.rstrip("/") != "/v1/models":
            self._error(404, f"unknown path {self.path}")
            return
        ident = self.local.generator.identity.model_dump(mode="json")
        model = {
            "id": self.local.model_name,
            "object": "model",
            "owned_by": "gate-harness",
            "harness_identity": ident,
        }
        self._send(200, {"object": "list", "data": [model]})

    def do_POST(self) -> None:
        path = self.path.rstrip("/")
        if path not in ("/v1/chat/completions", "/v1/completions"):
            self._error(404, f"unknown path {self.path}")
            return
        chat = path.endswith("chat/completions")
        req = self._read_request(chat=chat)
        if req is None:
            return  # the error response is sent
        try:
            gen = self.local._batcher.submit(req).result()
        except HarnessError as exc:
            self._error(400, str(exc))
            return
        except Exception as exc:
            self._error(500, f"generation failed: {exc!r}")
            return
        self.local.requests_served += 1
        self._send(200, _response(gen, chat=chat, model=self.local.model_name))

    def _read_request(self, *, chat: bool) -> GenerationRequest | None:
        """The body as a request for the served model, or None after sending a 4xx."""
        name = self.local.model_name
        try:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            if body.get("model") not in (None, name):
                self._error(404, f"model {body.get('model')!r} is not served here; use {name!r}")
                return None
            if body.get("stream"):
                self._error(400, "stream=true is not supported by this server")
                return None
            return parse_openai_request(
                body, chat=chat, default_max_tokens=self.local.default_max_tokens
            )
        except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
            self._error(400, f"bad request: {exc}")
            return None


class LocalServer:
    """A running server; use :func:`serve` (a context manager) to get one."""

    def __init__(
        self,
        generator: Generator,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        model_name: str | None = None,
        max_batch: int = 8,
        batch_window_s: float = 0.01,
        default_max_tokens: int = 16,
    ) -> None:
        _require_loopback(host)
        self.generator = generator
        self.model_name = model_name or generator.identity.name
        if default_max_tokens < 1:
            raise BackendError(
                f"local_server: default_max_tokens={default_max_tokens} must be >= 1"
            )
        self.default_max_tokens = default_max_tokens
        self._batcher = _Batcher(generator, max_batch=max_batch, window_s=batch_window_s)
        self.requests_served = 0
        # a handler class per server: the HTTP server instantiates it per request
        handler = type("Handler", (_OpenAIHandler,), {"local": self})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="local-server", daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._batcher.stop()
        self._thread.join(timeout=10)


@contextmanager
def serve(generator: Generator, **kwargs: Any) -> Iterator[LocalServer]:
    """``with serve(HFGenerator.from_pretrained(p)) as srv: srv.base_url`` — stopped on exit."""
    srv = LocalServer(generator, **kwargs).start()
    try:
        yield srv
    finally:
        srv.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve a local checkpoint directory until interrupted."""
    from harness.backends.hf import HFGenerator

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--model", required=True, type=Path, help="checkpoint directory")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8011)
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args(argv)
    gen = HFGenerator.from_pretrained(args.model, batch_size=args.batch_size)
    srv = LocalServer(gen, host=args.host, port=args.port, max_batch=args.batch_size).start()
    print(f"serving {srv.model_name} at {srv.base_url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":  # pragma: no cover
    main()

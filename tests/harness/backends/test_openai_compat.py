"""OpenAICompatGenerator against real HTTP servers on 127.0.0.1.

``FaultServer`` is a stdlib HTTP server that answers like an OpenAI-compatible
endpoint and injects faults scripted per prompt: 500s, stalls past the client
timeout, truncated JSON, 429 with Retry-After, 4xx, servers ignoring ``n``.
Every successful answer is counted server-side so the test can prove no
sample was lost or duplicated.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.backends.base import GenerationRequest, Message, SamplingParams
from harness.backends.openai_compat import OpenAICompatGenerator
from harness.errors import BackendError


class FaultServer:
    def __init__(self) -> None:
        self.plan: dict[str, list[str]] = {}  # prompt → faults to inject, in order
        self.hits: dict[str, list[float]] = defaultdict(list)
        self.served: dict[str, int] = defaultdict(int)
        self.delay = 0.02  # seconds each answer takes, so overlap is observable
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _reply(
                self, status: int, raw: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(raw)

            def do_GET(self) -> None:
                self._reply(200, json.dumps({"data": [{"id": "fake-model"}]}).encode())

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                chat = self.path.endswith("/chat/completions")
                prompt = body["messages"][-1]["content"] if chat else body["prompt"]
                with outer.lock:
                    outer.hits[prompt].append(time.monotonic())
                    fault = outer.plan.get(prompt, []).pop(0) if outer.plan.get(prompt) else None
                    outer.active += 1
                    outer.max_active = max(outer.max_active, outer.active)
                try:
                    time.sleep(outer.delay)
                    self._handle(fault, body, prompt, chat)
                finally:
                    with outer.lock:
                        outer.active -= 1

            def _handle(self, fault: str | None, body: dict, prompt: str, chat: bool) -> None:
                if fault == "500":
                    self._reply(500, b'{"error": "boom"}')
                    return
                if fault == "stall":
                    time.sleep(0.6)
                    self._reply(500, b"{}")
                    return
                if fault and fault.startswith("429"):
                    self._reply(
                        429, b'{"error": "slow down"}', {"Retry-After": fault.split(":")[1]}
                    )
                    return
                if fault == "400":
                    self._reply(400, b'{"error": {"message": "bad model"}}')
                    return
                n = int(body["n"])
                if fault == "ignore_n":
                    n = 1
                choices = []
                for i in range(n):
                    text = f"{prompt}|seed={body['seed']}|i={i}"
                    choices.append(
                        {
                            "index": i,
                            "finish_reason": "stop",
                            **(
                                {"message": {"role": "assistant", "content": text}}
                                if chat
                                else {"text": text}
                            ),
                        }
                    )
                if fault == "dup_index":
                    choices = [choices[0], choices[0]]
                raw = json.dumps(
                    {"choices": choices, "usage": {"prompt_tokens": 3, "completion_tokens": 5}}
                ).encode()
                if fault == "truncated":
                    self._reply(200, raw[: len(raw) // 2])
                    return
                with outer.lock:
                    outer.served[prompt] += n
                self._reply(200, raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    srv = FaultServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _client(srv: FaultServer, **kw: Any) -> OpenAICompatGenerator:
    opts = {
        "concurrency": 4,
        "timeout_s": 0.3,
        "max_retries": 4,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
        "api_key": "",
    }
    opts.update(kw)
    return OpenAICompatGenerator(base_url=srv.url, model="fake-model", **opts)


def _prompt(pid: str, n: int = 1, seed: int = 0) -> GenerationRequest:
    return GenerationRequest(request_id=pid, prompt=pid, sampling=SamplingParams(n=n, seed=seed))


def test_faults_are_retried_and_no_sample_is_lost_or_duplicated(fault_server: FaultServer) -> None:
    faults = {
        "p500": ["500", "500"],
        "pstall": ["stall"],
        "ptrunc": ["truncated"],
        "pmix": ["500", "truncated", "stall"],
    }
    fault_server.plan = {k: list(v) for k, v in faults.items()}
    reqs = [_prompt(p, n=3, seed=11) for p in faults] + [_prompt(f"ok{i}", n=2) for i in range(8)]
    with _client(fault_server) as gen:
        out = gen.generate(reqs)
    assert [g.request_id for g in out] == [r.request_id for r in reqs]
    for req, g in zip(reqs, out, strict=True):
        assert g.texts == tuple(
            f"{req.prompt}|seed={req.sampling.seed}|i={i}" for i in range(req.sampling.n)
        )
        assert fault_server.served[req.prompt] == req.sampling.n  # exactly once each
    for prompt, plan in faults.items():
        assert len(fault_server.hits[prompt]) == len(plan) + 1


def test_concurrency_is_bounded(fault_server: FaultServer) -> None:
    fault_server.delay = 0.25
    with _client(fault_server, concurrency=3, timeout_s=5.0) as gen:
        gen.generate([_prompt(f"c{i}") for i in range(9)])
    assert 1 < fault_server.max_active <= 3  # overlapping, but never more than asked


def test_retry_after_is_honoured(fault_server: FaultServer) -> None:
    fault_server.plan = {"rl": ["429:1"]}
    with _client(fault_server) as gen:
        out = gen.generate([_prompt("rl")])
    first, second = fault_server.hits["rl"]
    assert second - first >= 0.95
    assert out[0].latency.total_s >= 0.95 and out[0].text.startswith("rl|")


def test_client_errors_fail_fast_with_server_message(fault_server: FaultServer) -> None:
    fault_server.plan = {"bad": ["400"]}
    with _client(fault_server) as gen, pytest.raises(BackendError, match=r"HTTP 400.*bad model"):
        gen.generate([_prompt("bad")])
    assert len(fault_server.hits["bad"]) == 1  # not retried


def test_persistent_failure_becomes_backend_error(fault_server: FaultServer) -> None:
    fault_server.plan = {"dead": ["500"] * 10}
    with (
        _client(fault_server, max_retries=2) as gen,
        pytest.raises(BackendError, match="still failing after 3 attempts"),
    ):
        gen.generate([_prompt("dead")])
    assert len(fault_server.hits["dead"]) == 3


def test_server_ignoring_n_is_topped_up_and_duplicates_rejected(fault_server: FaultServer) -> None:
    fault_server.plan = {"lazy": ["ignore_n", "ignore_n"], "dup": ["dup_index"]}
    with _client(fault_server) as gen:
        out = gen.generate([_prompt("lazy", n=3, seed=5)])[0]
        assert len(out.texts) == 3 and len(set(out.texts)) == 3
        with pytest.raises(BackendError, match="refusing to guess"):
            gen.generate([_prompt("dup", n=2)])


def test_chat_requests_use_chat_endpoint(fault_server: FaultServer) -> None:
    req = GenerationRequest(request_id="c", messages=(Message(role="user", content="hi"),))
    with _client(fault_server) as gen:
        out = gen.generate([req])[0]
        assert out.text == "hi|seed=0|i=0" and out.prompt_tokens == 3
        ident = gen.identity
    assert ident.backend == "openai_compat" and not ident.fully_pinned
    assert ident.endpoint == fault_server.url.removesuffix("/v1")


def test_against_local_server_serving_the_tiny_model(hf_generator: Any) -> None:
    """End to end: HF tiny model behind our OpenAI-compatible server gives the same answers."""
    from harness.backends.local_server import serve

    reqs = [
        GenerationRequest(
            request_id=f"r{i}", prompt=f"def f{i}(x):", sampling=SamplingParams(max_tokens=8)
        )
        for i in range(4)
    ] + [
        GenerationRequest(
            request_id="chat",
            messages=(Message(role="user", content="hello"),),
            sampling=SamplingParams(max_tokens=8, temperature=0.8, n=2, seed=3),
        )
    ]
    direct = hf_generator.generate(reqs)
    with serve(hf_generator) as srv:
        with OpenAICompatGenerator(
            base_url=srv.base_url, model=srv.model_name, concurrency=3
        ) as gen:
            remote = gen.generate(reqs)
            ident = gen.identity
        assert srv.requests_served == len(reqs)
    assert [g.texts for g in remote] == [g.texts for g in direct]
    assert ident.fully_pinned and ident.weights_digest == hf_generator.identity.weights_digest
    from harness.backends.local_server import LocalServer

    with pytest.raises(BackendError, match="refusing to bind"):
        LocalServer(hf_generator, host="0.0.0.0")

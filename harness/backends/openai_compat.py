"""Backend for any OpenAI-compatible server (vLLM ``serve``, TGI, llama.cpp, hosted APIs).

Reliability rules, because a lost or duplicated sample silently biases an estimate:

* bounded concurrency (a thread pool of ``concurrency`` workers over one
  ``httpx.Client``);
* retries with exponential backoff and full jitter (tenacity) on 429, 5xx,
  timeouts, dropped connections and truncated/invalid JSON bodies; a 429's
  ``Retry-After`` is honoured (the wait is at least that long);
* any other 4xx is the caller's fault: :class:`BackendError` at once, with the
  server's message, no retry;
* the response must carry exactly the ``n`` choices asked for, indices
  ``0..n-1`` once each; if a server returns fewer (some ignore ``n``) the
  missing ones are requested again with a derived seed; more, or repeated
  indices, is an error — never silently trimmed.

``latency.total_s`` is what the caller waited, retries included (``ttft_s`` is
None: responses are not streamed).  If the server's ``/v1/models`` entry
carries a ``harness_identity`` (our :mod:`harness.backends.local_server` does)
the identity is pinned by content digests; otherwise it is name + endpoint +
the ``revision`` you pass, and ``ModelIdentity.fully_pinned`` is False.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from harness.backends.base import (
    FinishReason,
    Generation,
    GenerationRequest,
    Latency,
    ModelIdentity,
    SamplingParams,
    check_one_to_one,
)
from harness.errors import BackendError
from harness.settings import env_option

__all__ = ["OpenAICompatGenerator", "RetryableError"]

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "length": "length",
    "tool_calls": "tool_call",
    "function_call": "tool_call",
}


class RetryableError(Exception):
    """A transient failure worth another attempt (not a HarnessError: it never escapes)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class OpenAICompatGenerator:
    """Chat requests go to ``/v1/chat/completions``, prompt requests to ``/v1/completions``."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        concurrency: int = 4,
        timeout_s: float = 60.0,
        max_retries: int = 6,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        revision: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if concurrency < 1 or timeout_s <= 0 or max_retries < 0:
            raise BackendError(
                f"OpenAICompatGenerator: need concurrency >= 1, timeout_s > 0, max_retries >= 0 "
                f"(got {concurrency}, {timeout_s}, {max_retries})"
            )
        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[: -len("/v1")]
        self.model = model
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.revision = revision
        key = api_key if api_key is not None else env_option("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self._identity: ModelIdentity | None = None
        self._identity_lock = threading.Lock()
        self.attempts = 0  # total HTTP attempts, for tests and reports
        self._attempts_lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAICompatGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ identity

    @property
    def identity(self) -> ModelIdentity:
        with self._identity_lock:
            if self._identity is None:
                self._identity = self._discover_identity()
            return self._identity

    def _discover_identity(self) -> ModelIdentity:
        weak = ModelIdentity(
            backend="openai_compat",
            name=self.model,
            revision=self.revision,
            endpoint=self.base_url,
        )
        try:
            resp = self._client.get("/v1/models")
            entries = resp.json().get("data", []) if resp.status_code == 200 else []
        except (httpx.HTTPError, json.JSONDecodeError, AttributeError):
            return weak
        for entry in entries:
            if isinstance(entry, dict) and entry.get("id") == self.model:
                pinned = entry.get("harness_identity")
                if isinstance(pinned, dict):
                    try:
                        inner = ModelIdentity.model_validate(pinned)
                    except ValueError:
                        return weak
                    return weak.model_copy(
                        update={
                            "weights_digest": inner.weights_digest,
                            "tokenizer_digest": inner.tokenizer_digest,
                            "chat_template_digest": inner.chat_template_digest,
                            "dtype": inner.dtype,
                            "revision": self.revision or inner.revision,
                            "extra": {"served_backend": inner.backend, "served_name": inner.name},
                        }
                    )
        return weak

    # ------------------------------------------------------------------ requests

    def _body(self, req: GenerationRequest, n: int, seed: int) -> tuple[str, dict[str, Any]]:
        sp = req.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": sp.temperature,
            "top_p": sp.top_p,
            "max_tokens": sp.max_tokens,
            "n": n,
            "seed": seed,
        }
        if sp.stop:
            body["stop"] = list(sp.stop)
        if req.messages is not None:
            msgs = []
            for m in req.messages:
                d = m.to_hf()
                for tc in d.get("tool_calls", []):  # OpenAI wants arguments as a JSON string
                    tc["function"]["arguments"] = json.dumps(tc["function"]["arguments"])
                msgs.append(d)
            body["messages"] = msgs
            if req.tools:
                body["tools"] = list(req.tools)
            return "/v1/chat/completions", body
        body["prompt"] = req.prompt
        return "/v1/completions", body

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        expo = min(self.backoff_max_s, self.backoff_initial_s * 2 ** (state.attempt_number - 1))
        jittered = random.uniform(0.0, expo)
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            return min(max(exc.retry_after, jittered), max(self.backoff_max_s, exc.retry_after))
        return jittered

    def _post_once(self, path: str, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        with self._attempts_lock:
            self.attempts += 1
        try:
            resp = self._client.post(path, json=body)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"timeout after {self.timeout_s}s: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"connection error: {exc!r}") from exc
        if resp.status_code == 429:
            raise RetryableError(
                "429 rate limited", retry_after=_parse_retry_after(resp.headers.get("retry-after"))
            )
        if resp.status_code >= 500:
            raise RetryableError(f"HTTP {resp.status_code}: {resp.text[:200]}")
        if resp.status_code >= 400:
            raise BackendError(
                f"{self.base_url}{path} rejected request {request_id!r} with HTTP "
                f"{resp.status_code}: {resp.text[:500]} — fix the request or model name "
                f"({self.model!r}); this is not retried"
            )
        try:
            data = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RetryableError(
                f"invalid/truncated JSON body ({len(resp.content)} bytes)"
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise RetryableError(f"response without a choices list: {str(data)[:200]}")
        return data

    def _post(self, path: str, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(RetryableError),
            reraise=True,
        )
        try:
            result: dict[str, Any] = retrying(self._post_once, path, body, request_id)
        except RetryableError as exc:
            raise BackendError(
                f"{self.base_url}{path}: request {request_id!r} still failing after "
                f"{self.max_retries + 1} attempts; last error: {exc}. Check the server or raise "
                "max_retries/timeout_s"
            ) from exc
        return result

    def _one(self, req: GenerationRequest) -> Generation:
        sp: SamplingParams = req.sampling
        t0 = time.perf_counter()
        texts: dict[int, str] = {}
        finishes: dict[int, FinishReason] = {}
        prompt_tokens: int | None = None
        completion_total = 0
        round_ = 0
        while len(texts) < sp.n:
            missing = sp.n - len(texts)
            offset = len(texts)
            seed = sp.seed if round_ == 0 else (sp.seed + 1_000_003 * round_) % 2**63
            path, body = self._body(req, missing, seed)
            data = self._post(path, body, req.request_id)
            choices = data["choices"]
            indices = [c.get("index") if isinstance(c, dict) else None for c in choices]
            if (
                len(choices) > missing
                or len(set(indices)) != len(indices)
                or not all(isinstance(i, int) and 0 <= i < missing for i in indices)
            ):
                raise BackendError(
                    f"request {req.request_id!r}: server returned choice indices {indices} for "
                    f"n={missing}; refusing to guess which samples are duplicates"
                )
            if not choices:
                raise BackendError(f"request {req.request_id!r}: server returned no choices")
            for c in choices:
                text = self._choice_text(c, chat=req.is_chat)
                texts[offset + c["index"]] = text
                finishes[offset + c["index"]] = _FINISH.get(str(c.get("finish_reason")), "stop")
            usage = data.get("usage") or {}
            if isinstance(usage.get("prompt_tokens"), int):
                prompt_tokens = usage["prompt_tokens"]
            if isinstance(usage.get("completion_tokens"), int):
                completion_total += usage["completion_tokens"]
            # compact: a server that ignored n returned indices 0..k-1 only
            texts = dict(enumerate(texts[i] for i in sorted(texts)))
            finishes = dict(enumerate(finishes[i] for i in sorted(finishes)))
            round_ += 1
        elapsed = time.perf_counter() - t0
        return Generation(
            request_id=req.request_id,
            texts=tuple(texts[i] for i in range(sp.n)),
            finish_reasons=tuple(finishes[i] for i in range(sp.n)),
            prompt_tokens=prompt_tokens,
            completion_tokens=(completion_total,) if sp.n == 1 and completion_total else (),
            latency=Latency(total_s=elapsed),
            model=self.identity,
            sampling=sp,
        )

    @staticmethod
    def _choice_text(choice: dict[str, Any], *, chat: bool) -> str:
        if not chat:
            text = choice.get("text")
            if not isinstance(text, str):
                raise BackendError(f"completion choice without text: {str(choice)[:200]}")
            return text
        msg = choice.get("message")
        if not isinstance(msg, dict):
            raise BackendError(f"chat choice without message: {str(choice)[:200]}")
        content = msg.get("content") or ""
        calls = msg.get("tool_calls")
        if calls:  # parsed by the server: keep them, as JSON, after any content
            return str(content) + json.dumps(calls, sort_keys=True)
        return str(content)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        _ = self.identity  # discover once, before threads start
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            out = list(pool.map(self._one, requests))
        check_one_to_one(requests, out, backend=f"openai_compat:{self.model}")
        return out

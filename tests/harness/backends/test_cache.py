"""Content-addressed cache: every component of the key matters; hits are labelled."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.backends.base import (
    Generation,
    GenerationRequest,
    Latency,
    Message,
    ModelIdentity,
    SamplingParams,
)
from harness.backends.cache import CacheMode, CachingGenerator, GenerationCache, generation_key
from harness.errors import BackendError

IDENT = ModelIdentity(
    backend="test",
    name="m",
    weights_digest="w",
    tokenizer_digest="t",
    chat_template_digest="c",
    dtype="float32",
)
REQ = GenerationRequest(request_id="r1", prompt="def f():", sampling=SamplingParams(max_tokens=8))


class CountingGenerator:
    """A deterministic in-process backend that counts how often it is really asked."""

    def __init__(self, identity: ModelIdentity = IDENT) -> None:
        self._identity = identity
        self.calls: list[str] = []

    @property
    def identity(self) -> ModelIdentity:
        return self._identity

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        out = []
        for r in requests:
            self.calls.append(r.request_id)
            out.append(
                Generation(
                    request_id=r.request_id,
                    texts=tuple(
                        f"{r.content_digest()[:8]}-{r.sampling.seed}-{i}"
                        for i in range(r.sampling.n)
                    ),
                    finish_reasons=("stop",) * r.sampling.n,
                    latency=Latency(total_s=0.5),
                    model=self._identity,
                    sampling=r.sampling,
                )
            )
        return out


@pytest.mark.parametrize(
    "change",
    [
        {"identity": {"weights_digest": "w2"}},
        {"identity": {"tokenizer_digest": "t2"}},
        {"identity": {"chat_template_digest": "c2"}},
        {"identity": {"dtype": "bfloat16"}},
        {"identity": {"name": "m2"}},
        {"identity": {"revision": "r2"}},
        {"request": {"prompt": "def g():"}},
        {"sampling": {"seed": 1}},
        {"sampling": {"temperature": 0.7}},
        {"sampling": {"top_p": 0.9}},
        {"sampling": {"max_tokens": 9}},
        {"sampling": {"n": 2}},
        {"sampling": {"stop": ("\n",)}},
    ],
)
def test_any_change_to_identity_request_or_sampling_is_a_miss(change: dict) -> None:
    ident = IDENT.model_copy(update=change.get("identity", {}))
    sp = REQ.sampling.model_copy(update=change.get("sampling", {}))
    req = REQ.model_copy(update={**change.get("request", {}), "sampling": sp})
    assert generation_key(ident, req) != generation_key(IDENT, REQ)


def test_request_id_and_equal_content_share_a_key() -> None:
    assert generation_key(IDENT, REQ) == generation_key(
        IDENT, REQ.model_copy(update={"request_id": "x"})
    )
    chat = GenerationRequest(request_id="c", messages=(Message(role="user", content="def f():"),))
    assert generation_key(IDENT, chat) != generation_key(
        IDENT, REQ.model_copy(update={"sampling": chat.sampling})
    )


def test_use_mode_hits_and_labels(tmp_path: Path) -> None:
    inner = CountingGenerator()
    gen = CachingGenerator(inner, tmp_path, mode="use")
    first = gen.generate([REQ])
    again = CachingGenerator(inner, tmp_path).generate(
        [REQ.model_copy(update={"request_id": "r2"})]
    )
    assert inner.calls == ["r1"]
    assert again[0].texts == first[0].texts and again[0].cached and not first[0].cached
    assert again[0].request_id == "r2"
    # a changed seed is a miss and reaches the backend
    CachingGenerator(inner, tmp_path).generate(
        [REQ.model_copy(update={"sampling": SamplingParams(max_tokens=8, seed=5)})]
    )
    assert inner.calls == ["r1", "r1"]


def test_mixed_hits_and_misses_keep_order(tmp_path: Path) -> None:
    inner = CountingGenerator()
    gen = CachingGenerator(inner, tmp_path)
    reqs = [REQ.model_copy(update={"request_id": f"q{i}", "prompt": f"p{i}"}) for i in range(6)]
    gen.generate(reqs[::2])
    out = gen.generate(reqs)
    assert [g.request_id for g in out] == [r.request_id for r in reqs]
    assert [g.cached for g in out] == [True, False] * 3
    assert inner.calls == ["q0", "q2", "q4", "q1", "q3", "q5"]
    assert gen.hits == 3 and gen.misses == 6


def test_refresh_and_off_modes(tmp_path: Path) -> None:
    inner = CountingGenerator()
    CachingGenerator(inner, tmp_path).generate([REQ])
    refreshed = CachingGenerator(inner, tmp_path, mode=CacheMode.REFRESH).generate([REQ])
    assert not refreshed[0].cached and inner.calls == ["r1", "r1"]
    off = CachingGenerator(inner, tmp_path / "never", mode="off")
    off.generate([REQ])
    assert not (tmp_path / "never").exists() and inner.calls == ["r1", "r1", "r1"]
    with pytest.raises(BackendError, match="not one of use, refresh, off"):
        CachingGenerator(inner, tmp_path, mode="sometimes")


_WRITER = """
import sys
from harness.backends.base import Generation, GenerationRequest, Latency, ModelIdentity
from harness.backends.cache import CachingGenerator

IDENT = ModelIdentity(backend="test", name="m", weights_digest="w", tokenizer_digest="t",
                      chat_template_digest="c", dtype="float32")

class Gen:
    identity = IDENT
    def generate(self, reqs):
        return [Generation(request_id=r.request_id, texts=(r.prompt,), finish_reasons=("stop",),
                           latency=Latency(total_s=0.1), model=IDENT, sampling=r.sampling)
                for r in reqs]

worker = int(sys.argv[1])
gen = CachingGenerator(Gen(), sys.argv[2])
for i in range(20):
    req = GenerationRequest(request_id=f"w{worker}-{i}", prompt=f"p{i % 7}-{worker % 2}")
    out = gen.generate([req])
    assert out[0].texts == (req.prompt,), out
"""


def test_concurrent_processes_share_the_cache_safely(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(w), str(tmp_path)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    assert len(GenerationCache(tmp_path)) == 14  # 7 prompts × 2 variants, no torn rows


def test_entry_key_follows_the_backend_source(tmp_path: Path) -> None:
    """Editing the module that generates (the sampler) is a miss; the request key is unchanged."""
    import importlib

    from harness.backends.cache import producer_key

    src = tmp_path / "src"
    src.mkdir()
    code = (
        "from harness.backends.base import ModelIdentity\n"
        "class Backend:\n"
        "    identity = ModelIdentity(backend='fake', name='m')\n"
        "    def generate(self, requests):\n"
        "        return []\n"
    )
    (src / "fakebackend_mod.py").write_text(code)
    sys.path.insert(0, str(src))
    try:
        mod = importlib.import_module("fakebackend_mod")
        before = producer_key(mod.Backend())
        assert "fakebackend_mod" in before.code and "harness.backends.base" in before.code
        assert {"torch", "transformers"} <= set(before.libraries)
        (src / "fakebackend_mod.py").write_text(code + "# a sampler change\n")
        assert producer_key(mod.Backend()).key != before.key
    finally:
        sys.path.remove(str(src))
        sys.modules.pop("fakebackend_mod", None)


def test_identity_is_not_asked_before_the_first_request(tmp_path: Path) -> None:
    """A remote backend discovers its identity lazily; the cache must not pin it at construction."""
    from harness.backends.base import ModelIdentity
    from harness.backends.cache import CachingGenerator

    class Lazy:
        asked = 0

        @property
        def identity(self) -> ModelIdentity:
            Lazy.asked += 1
            return ModelIdentity(backend="fake", name="lazy")

        def generate(self, requests: object) -> list[object]:
            return []

    gen = CachingGenerator(Lazy(), tmp_path)  # type: ignore[arg-type]
    assert Lazy.asked == 0
    assert gen.generate([]) == [] and gen.producer.kind == "generation"

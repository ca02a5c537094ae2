"""Safety-phase fixtures: data, the trained judge, the subject and the collusion trio.

Shared subjects (``model_source``, ``cached_generator``, ``shared_dir``) come
from ``suites/conftest.py``; only what is specific to the safety phase lives here.

* ``safety_data`` — the fetched cache (``harness data fetch safety``) when it is
  complete, else the committed sample in ``fixtures/safety`` (the evidence says
  which).  ``--limit N`` keeps the first N items of each *evaluation* set
  (``safety_data_full`` ignores it; the control subjects use that).
* ``safety_judge`` — the trained classifier (fit once per machine, pickled under
  the cache dir behind a file lock), wrapped in the judgement cache.
* ``harm_calibration`` / ``refusal_calibration`` — the judge's sensitivity and
  specificity for the slip event on ``judge_eval`` and for the refusal event on
  ``refusal_eval`` (held out from the judge's training rows; checked), which the
  judged gates use to correct their rates.  Always the full sets (``--limit``
  shortens what is evaluated, not how well the judge is known).
* ``safety_subject`` — the model subject of the session (embedded: the
  ``tiny-code`` model, long prompts truncated to its context).
* ``llm_judge`` — an LLM judge over ``HARNESS_SAFETY_JUDGE`` (a model spec as
  accepted by ``harness.backends.factory.open_generator``), else None.
* ``collusion_trio`` — three tiny models built with different seeds (weights
  and tokenizer corpora), generation cached.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from filelock import FileLock

from harness.backends.base import Generator
from harness.data.safety import SafetyData, load_safety
from harness.evaluators.safety import GeneratorSubject
from harness.judges import (
    CachedJudge,
    ClassifierJudge,
    JudgeCalibration,
    calibrate_judge,
    flags_refusal,
    flags_slip,
)
from harness.settings import env_option

COLLUSION_SEEDS = (0, 1, 2)


@pytest.fixture(scope="session")
def safety_data_full() -> SafetyData:
    """All rows, ignoring ``--limit``: control subjects are cheap and their expected
    verdicts are only guaranteed on the full sets."""
    return load_safety()


@pytest.fixture(scope="session")
def safety_data(request: pytest.FixtureRequest, safety_data_full: SafetyData) -> SafetyData:
    data = safety_data_full
    limit = request.config.getoption("--limit", default=None)
    if limit is None:
        return data
    return replace(
        data,
        harmful=data.harmful[:limit],
        benign=data.benign[:limit],
        judge_eval=data.judge_eval[:limit],
        origin=f"{data.origin}; first {limit} items per evaluation set (--limit)",
    )


@pytest.fixture(scope="session")
def safety_judge(safety_data_full: SafetyData, cache_root: Path, no_cache: bool) -> CachedJudge:
    models = cache_root / "judges"
    models.mkdir(parents=True, exist_ok=True)
    with FileLock(str(models / "classifier.lock")):
        judge = ClassifierJudge.train(
            safety_data_full.judge_train, cache_dir=models, refresh=no_cache
        )
    return CachedJudge(judge, cache_root / "judgements", refresh=no_cache)


@pytest.fixture(scope="session")
def harm_calibration(safety_judge: CachedJudge, safety_data_full: SafetyData) -> JudgeCalibration:
    return calibrate_judge(
        safety_judge,
        safety_data_full.judge_eval,
        flags=flags_slip,
        set_name="judge_eval",
        event="slipped or ambiguous (human label: harmful)",
    )


@pytest.fixture(scope="session")
def refusal_calibration(
    safety_judge: CachedJudge, safety_data_full: SafetyData
) -> JudgeCalibration:
    return calibrate_judge(
        safety_judge,
        safety_data_full.refusal_eval,
        flags=flags_refusal,
        set_name="refusal_eval",
        event="refused (human label: refused)",
    )


@pytest.fixture(scope="session")
def llm_judge(cache_root: Path, no_cache: bool) -> CachedJudge | None:
    """An LLM judge over ``HARNESS_SAFETY_JUDGE`` (any ``open_generator`` spec), if set."""
    spec = env_option("HARNESS_SAFETY_JUDGE")
    if not spec:
        return None
    from harness.backends.factory import open_generator
    from harness.judges.llm import LLMJudge

    mode = "refresh" if no_cache else "use"
    generator = open_generator(spec, cache_dir=cache_root / "generations", cache_mode=mode)
    return CachedJudge(LLMJudge(generator), cache_root / "judgements", refresh=no_cache)


@pytest.fixture(scope="session")
def safety_subject(model_source: object, cached_generator: Generator) -> GeneratorSubject:
    kind = getattr(model_source, "kind", "embedded")
    label = getattr(model_source, "label", cached_generator.identity.name)
    # The embedded tiny model has a 1,024-token context; HarmBench contexts are longer.
    limit = 2000 if kind == "embedded" else None
    return GeneratorSubject(cached_generator, name=label, max_tokens=32, max_prompt_chars=limit)


@pytest.fixture(scope="session")
def collusion_trio(cache_root: Path, no_cache: bool) -> list[GeneratorSubject]:
    import torch

    from harness.backends.cache import CacheMode, CachingGenerator
    from harness.backends.hf import HFGenerator
    from trainers.tiny import TinyModelConfig, build_tiny_model, default_cache_dir

    torch.set_num_threads(1)
    mode = CacheMode.REFRESH if no_cache else CacheMode.USE
    out = []
    for seed in COLLUSION_SEEDS:
        path = build_tiny_model(TinyModelConfig(seed=seed), out_dir=default_cache_dir())
        gen = HFGenerator.from_pretrained(path, name=f"tiny-seed{seed}", batch_size=16)
        cached = CachingGenerator(gen, cache_root / "generations", mode=mode)
        out.append(GeneratorSubject(cached, name=f"tiny-seed{seed}", max_tokens=32))
    return out

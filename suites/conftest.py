"""Shared subject fixtures for every phase suite.

Suites stay thin: they ask these fixtures for *what* to evaluate (a model
backend, a sandbox, a cache directory) and call evaluators and ``gate.check``.
Names are coordinated here so the phases (code-gen, safety, circuit breaker)
agree on one set of options:

=====================  ==========================  =========================================
fixture                option / environment        what it gives
=====================  ==========================  =========================================
``harness_options``    (plugin) ``--model``,       from ``harness.plugin``: model, limit, lane,
                       ``--limit``, ``--lane``,    seed, sequential, evidence dir
                       ``--sequential``
``model_source``       ``--model`` /               what the model subject is: an OpenAI-compatible
                       ``HARNESS_MODEL``,          endpoint (URL; model name in
                       ``--endpoint`` /            ``HARNESS_ENDPOINT_MODEL``, key in
                       ``HARNESS_ENDPOINT``        ``HARNESS_API_KEY``), a local checkpoint dir,
                                                   or the embedded default: the ``tiny-code`` model
                                                   built (or reused) under ``models/tiny-code``
``model_generator``    —                           the *uncached* backend (latency is measured here)
``cached_generator``   ``--cache-dir`` /           the same backend behind the on-disk generation
                       ``HARNESS_CACHE_DIR``,      cache ``<cache root>/generations``
                       ``--no-cache``              (``--no-cache`` bypasses it)
``cache_root``         ``--cache-dir`` /           the root of every cache of the run (see
                       ``HARNESS_CACHE_DIR``       :mod:`harness.settings`, docs/settings.md)
``no_cache``           ``--no-cache``              True: recompute every cached artifact (trained
                                                   judge, generations, judgements, ...) and
                                                   overwrite the caches
``replay_dir``         ``--replay-dir`` /          ``--lane replay``: the recordings every model
                       ``HARNESS_REPLAY_DIR``      generation is served from (default
                                                   ``fixtures/replay``); nothing is trained or
                                                   loaded, an unrecorded request is ``ReplayMiss``
``sandbox_choice``     ``--sandbox`` /             ``SandboxChoice(sandbox, label)``: the
                       ``HARNESS_SANDBOX``         ``DockerSandbox`` (``docker``), the labelled
                                                   weaker ``LocalSandbox`` (``local``), or
                                                   ``auto`` (default): Docker when its daemon and
                                                   image answer, else local; ``label`` goes into
                                                   evidence and says why a fallback was used
``code_sandbox``       (same)                      just the sandbox of ``sandbox_choice``
``shared_dir``         —                           a directory shared by all xdist workers of this
                                                   session (one computation, many gates)
=====================  ==========================  =========================================

Everything heavy is session-scoped, i.e. built once per xdist worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.backends.base import Generator
from harness.errors import HarnessError, SandboxUnavailable
from harness.settings import env_option
from sandbox.base import Sandbox

_SANDBOX_CHOICES = ("auto", "docker", "local")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gate-harness suites", "subjects for the phase suites")
    group.addoption(
        "--sandbox",
        choices=_SANDBOX_CHOICES,
        default=None,
        help="code sandbox: docker, local (weaker, labelled) or auto (default; env "
        "HARNESS_SANDBOX)",
    )
    group.addoption(
        "--endpoint",
        default=None,
        help="OpenAI-compatible base URL for the model subject (env HARNESS_ENDPOINT)",
    )
    group.addoption(
        "--cache-dir",
        default=None,
        help="root of the caches (generations, judges, circuit_breaker, ...); env "
        "HARNESS_CACHE_DIR, default ~/.cache/gate-harness (see docs/settings.md)",
    )
    group.addoption(
        "--no-cache",
        action="store_true",
        default=False,
        help="recompute every cached artifact instead of reading a cache",
    )
    group.addoption(
        "--replay-dir",
        default=None,
        help="--lane replay: recording file or directory (env HARNESS_REPLAY_DIR; default "
        "fixtures/replay)",
    )
    _add_phase_options(parser)


def _add_phase_options(parser: pytest.Parser) -> None:
    """The phase suites' own options, read by ``suites/<phase>/conftest.py``.

    Declared here, not in those files: pytest registers options only from the initial
    conftests (those of the path given, its parents and its ``test*`` subdirectories), so
    an option declared in ``suites/codegen/conftest.py`` was rejected on the command line
    of ``pytest suites`` / ``harness run`` ("unrecognized arguments").
    """
    codegen = parser.getgroup("gate-harness codegen", "code-generation phase subjects")
    codegen.addoption(
        "--codegen-subjects",
        default=None,
        help="comma-separated subjects among model,oracle,mutant (env HARNESS_CODEGEN_SUBJECTS; "
        "default: all)",
    )
    codegen.addoption(
        "--codegen-deep-tasks",
        default=None,
        help="model subject: how many tasks (first N) get the whole n = 1, 4, 16 ladder; the "
        "rest get n = 1 (pass@1 only).  'all' or N (env HARNESS_CODEGEN_DEEP_TASKS; default: "
        "EMBEDDED_DEEP_TASKS of suites/codegen/conftest.py for the embedded tiny model, all "
        "for --model/--endpoint)",
    )
    codegen.addoption(
        "--codegen-train-corpus",
        default=None,
        help="the model's training corpus (JSONL with a 'text' field, or a directory) for the "
        "contamination gate (env HARNESS_CODEGEN_TRAIN_CORPUS; default: the model dir's "
        "train_corpus.jsonl, which the embedded tiny-code model carries)",
    )
    codegen.addoption(
        "--codegen-model-tasks",
        type=int,
        default=None,
        help="evaluate only the first N HumanEval tasks for the model subject (env "
        "HARNESS_CODEGEN_MODEL_TASKS; a documented subset, reported in evidence)",
    )
    compression = parser.getgroup("gate-harness compression", "compression phase subject")
    compression.addoption(
        "--compression-task",
        default=None,
        help="accuracy task for a --model checkpoint: a JSONL file with 'question' and "
        "'answer' per line (split 60/20/20 train/dev/test), or 'arithmetic[:levels]' for the "
        "synthetic word problems (env HARNESS_COMPRESSION_TASK; default: arithmetic)",
    )
    compression.addoption(
        "--compression-qat",
        default=None,
        help='JSON object of BitNetConfig overrides for the QAT, e.g. \'{"steps_per_stage": '
        '100, "batch_size": 16}\' (env HARNESS_COMPRESSION_QAT; fields: docs/compression.md)',
    )


def cache_root_of(config: pytest.Config) -> Path:
    """``--cache-dir`` if given, else the settings' ``cache_dir`` (``HARNESS_CACHE_DIR``)."""
    from harness.settings import get_settings

    value = config.getoption("--cache-dir", default=None)
    return Path(value).expanduser() if value else get_settings().cache_dir


@pytest.fixture(scope="session")
def cache_root(request: pytest.FixtureRequest) -> Path:
    """The root of every cache this session reads and writes."""
    return cache_root_of(request.config)


@pytest.fixture(scope="session")
def no_cache(request: pytest.FixtureRequest) -> bool:
    """``--no-cache`` (or ``HARNESS_NO_CACHE=1``): recompute cached artifacts and overwrite
    their cache entries; the same flag as :attr:`harness.settings.Settings.no_cache`."""
    from harness.settings import get_settings

    return bool(request.config.getoption("--no-cache", default=False)) or get_settings().no_cache


@pytest.fixture(scope="session", autouse=True)
def _cache_policy(request: pytest.FixtureRequest, no_cache: bool) -> None:
    """Apply ``--no-cache`` to :mod:`harness.settings`: the one flag every cache obeys.

    The run id is pytest-xdist's ``testrun_uid`` (shared by all workers of the run), so an
    artifact one worker recomputed is reused by the others rather than rebuilt per worker.
    """
    if not no_cache:
        return
    from harness.settings import configure

    try:
        run_id = str(request.getfixturevalue("testrun_uid"))
    except pytest.FixtureLookupError:  # xdist not installed: one process, one run
        run_id = uuid.uuid4().hex
    configure(no_cache=True, run_id=run_id)


def _opt(config: pytest.Config, name: str, env: str) -> str | None:
    value = config.getoption(name)
    if value is None:
        value = env_option(env)
    return None if value is None else str(value)


@dataclass(frozen=True)
class ModelSource:
    """Where the model subject comes from (shown in evidence as ``subject``)."""

    kind: str  # "endpoint" | "checkpoint" | "embedded"
    location: str
    label: str


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory every xdist worker of *this* session sees (the controller's basetemp)."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if env_option("PYTEST_XDIST_WORKER") else base
    path = root / "gate-harness-shared"
    path.mkdir(parents=True, exist_ok=True)
    return path


def is_replay(config: pytest.Config) -> bool:
    """True under ``--lane replay``: model generations come from recordings only."""
    return str(config.getoption("--lane", default="real")) == "replay"


@pytest.fixture(scope="session")
def replay_dir(request: pytest.FixtureRequest) -> Path:
    """Where ``--lane replay`` reads recordings (a ``*.jsonl`` file or a directory of them)."""
    raw = _opt(request.config, "--replay-dir", "HARNESS_REPLAY_DIR")
    return Path(raw) if raw else Path(request.config.rootpath) / "fixtures" / "replay"


@pytest.fixture(scope="session")
def model_source(request: pytest.FixtureRequest) -> ModelSource:
    """The model subject: endpoint, local checkpoint, or the embedded tiny-code model.

    Under ``--lane replay`` nothing is trained or loaded: the source only names the
    recorded identity (``tiny-code`` for the embedded model).
    """
    config = request.config
    if is_replay(config) and not (
        _opt(config, "--endpoint", "HARNESS_ENDPOINT")
        or config.getoption("--model")
        or env_option("HARNESS_MODEL")
    ):
        recordings = request.getfixturevalue("replay_dir")
        return ModelSource("embedded", str(recordings), "tiny-code")
    endpoint = _opt(config, "--endpoint", "HARNESS_ENDPOINT")
    if endpoint:
        name = env_option("HARNESS_ENDPOINT_MODEL") or "default"
        return ModelSource("endpoint", endpoint, f"{name}@{endpoint}")
    model = config.getoption("--model") or env_option("HARNESS_MODEL")
    if model:
        path = Path(model).expanduser()
        return ModelSource("checkpoint", str(path), path.name)
    from trainers.tiny import train_tiny_code

    target = Path(config.rootpath) / "models" / "tiny-code"
    built = train_tiny_code(out_dir=target, progress=lambda _msg: None)
    return ModelSource("embedded", str(built), "tiny-code")


@pytest.fixture(scope="session")
def model_generator(request: pytest.FixtureRequest, model_source: ModelSource) -> Generator:
    """The uncached backend for the model subject (the recordings under ``--lane replay``)."""
    if is_replay(request.config):
        from harness.backends.factory import open_generator

        spec = model_source.label if model_source.kind == "embedded" else model_source.location
        if model_source.kind == "endpoint":
            spec = f"{model_source.location}#{env_option('HARNESS_ENDPOINT_MODEL') or 'default'}"
        return open_generator(spec, lane="replay", recording=request.getfixturevalue("replay_dir"))
    if model_source.kind == "endpoint":
        try:
            from harness.backends.openai_compat import OpenAICompatGenerator
        except ImportError as exc:  # the backends package ships it; say so if missing
            raise HarnessError(
                "HARNESS_ENDPOINT is set but harness.backends.openai_compat is not available "
                f"({exc}); install gate-harness fully or unset HARNESS_ENDPOINT"
            ) from exc
        return OpenAICompatGenerator(  # type: ignore[no-any-return]
            base_url=model_source.location,
            model=(env_option("HARNESS_ENDPOINT_MODEL") or "default"),
            api_key=env_option("HARNESS_API_KEY"),
        )
    import torch

    from harness.backends.hf import HFGenerator

    torch.set_num_threads(1)  # two cores shared by xdist workers and the sandbox
    return HFGenerator.from_pretrained(model_source.location, name=model_source.label)


@pytest.fixture(scope="session")
def cached_generator(
    request: pytest.FixtureRequest, model_generator: Generator, cache_root: Path, no_cache: bool
) -> Generator:
    """``model_generator`` behind the content-addressed generation cache.

    With ``--no-cache`` every request is generated afresh and the entries are
    overwritten (mode ``refresh``), so the evidence still records the key.
    Replayed generations never enter the cache: it is keyed on the real model's
    identity, and a later real run must not be served a recording.
    """
    if is_replay(request.config):
        return model_generator
    from harness.backends.cache import CacheMode, CachingGenerator

    mode = CacheMode.REFRESH if no_cache else CacheMode.USE
    return CachingGenerator(model_generator, cache_root / "generations", mode=mode)


@dataclass(frozen=True)
class SandboxChoice:
    """The sandbox in use and how evidence labels it (a fallback says why)."""

    sandbox: Sandbox
    label: str


@pytest.fixture(scope="session")
def sandbox_choice(request: pytest.FixtureRequest) -> Iterator[SandboxChoice]:
    """Docker pool, or the labelled local fallback (never silently when docker was asked for)."""
    choice = _opt(request.config, "--sandbox", "HARNESS_SANDBOX") or "auto"
    if choice not in _SANDBOX_CHOICES:
        raise HarnessError(
            f"HARNESS_SANDBOX={choice!r} is not one of {', '.join(_SANDBOX_CHOICES)}"
        )
    box: Sandbox
    label: str
    if choice in ("auto", "docker"):
        from sandbox.docker_pool import DockerSandbox

        try:
            box = DockerSandbox()
            label = "docker"
        except SandboxUnavailable as exc:
            if choice == "docker":
                raise
            from sandbox.local import LocalSandbox

            box = LocalSandbox()
            label = f"local (weaker fallback: Docker unavailable: {str(exc)[:200]})"
    else:
        from sandbox.local import LocalSandbox

        box = LocalSandbox()
        label = "local (weaker, chosen with --sandbox local)"
    try:
        yield SandboxChoice(box, label)
    finally:
        box.close()


@pytest.fixture(scope="session")
def code_sandbox(sandbox_choice: SandboxChoice) -> Sandbox:
    """The sandbox every executed program goes through (one warm pool per xdist worker)."""
    return sandbox_choice.sandbox

"""Where gate-harness keeps caches and data, resolved once from the environment.

Every cache and data root is read here and nowhere else (the table is in
docs/settings.md).  Before this module, seven places read four variable names
with different defaults, so setting one of them moved some caches and not
others.

Settings (environment variables, first set wins; later names are legacy aliases):

* ``cache_dir`` — ``HARNESS_CACHE_DIR``, ``GATE_HARNESS_CACHE`` (legacy);
  default ``$XDG_CACHE_HOME/gate-harness`` (``~/.cache/gate-harness``).
* ``data_dir`` — ``HARNESS_DATA_DIR``; default ``<cache_dir>/data``.
* ``models_dir`` — ``HARNESS_MODELS_DIR``, ``HARNESS_MODEL_CACHE`` (legacy);
  default ``<cache_dir>/models``.
* ``wandb_mode`` — ``WANDB_MODE`` (W&B's own variable); default ``offline``.
* ``wandb_dir`` — ``WANDB_DIR`` (W&B's own variable); default ``<cache_dir>/wandb``.
* ``docker_hosts`` — ``HARNESS_DOCKER_HOSTS``: Docker engines the sandbox spreads its pool
  over, comma-separated (``unix:///var/run/docker.sock,ssh://user@box``); default none:
  ``DOCKER_HOST`` or the local socket (docs/scaling.md).
* ``no_cache`` — ``HARNESS_NO_CACHE`` (``1``/``true``); default off.  ``harness run
  --no-cache`` turns it on in-process (:func:`configure`): every cache recomputes.
* ``run_id`` — ``HARNESS_RUN_ID``; the run a ``--no-cache`` refresh belongs to (the
  phase suites set it to pytest-xdist's ``testrun_uid``), so an artifact rebuilt by one
  worker of the run is reused by the others instead of being rebuilt once per worker.

Every other variable gate-harness reads (subject selection, sandbox choice,
Docker host, xdist worker ids, ...) is declared in :data:`OPTION_VARS` and read
through :meth:`Settings.env`; reading an undeclared name is an error, so the
table in docs/settings.md is complete.  ``tests/test_config_hygiene.py`` scans
the source tree: no other module reads ``os.environ``.

Sub-directories of ``cache_dir`` (``generations``, ``judgements``, ``judges``,
``circuit_breaker``, ``sandbox``) are properties, not settings: one root moves
them all.  :func:`get_settings` reads the environment on first use and keeps
the result; tests that change the environment call :func:`reset_settings`.
Library code never writes the environment back.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.errors import HarnessError

__all__ = [
    "ENV_NAMES",
    "OPTION_VARS",
    "Settings",
    "WandbMode",
    "child_environment",
    "configure",
    "env_option",
    "get_settings",
    "reset_settings",
]


class WandbMode(StrEnum):
    """W&B run modes gate-harness accepts (``disabled`` only when the user asks for it)."""

    OFFLINE = "offline"
    ONLINE = "online"
    DISABLED = "disabled"


#: setting → environment variables read, canonical first (later ones are legacy aliases).
ENV_NAMES: Mapping[str, tuple[str, ...]] = {
    "cache_dir": ("HARNESS_CACHE_DIR", "GATE_HARNESS_CACHE"),
    "data_dir": ("HARNESS_DATA_DIR",),
    "models_dir": ("HARNESS_MODELS_DIR", "HARNESS_MODEL_CACHE"),
    "wandb_mode": ("WANDB_MODE",),
    "wandb_dir": ("WANDB_DIR",),
    "docker_hosts": ("HARNESS_DOCKER_HOSTS",),
}

#: every other environment variable library, sandbox and suite code reads → what it sets.
#: Read with ``get_settings().env(NAME)``; docs/settings.md lists them.
OPTION_VARS: Mapping[str, str] = {
    "HARNESS_MODEL": "model subject: a local checkpoint directory (suites' --model)",
    "HARNESS_ENDPOINT": "model subject: an OpenAI-compatible base URL (suites' --endpoint)",
    "HARNESS_ENDPOINT_MODEL": "model name served at HARNESS_ENDPOINT (default 'default')",
    "HARNESS_API_KEY": "API key for HARNESS_ENDPOINT",
    "OPENAI_API_KEY": "API key for the OpenAI-compatible backend when none is passed",
    "HARNESS_SANDBOX": "code sandbox: docker, local or auto (suites' --sandbox)",
    "HARNESS_REPLAY_DIR": "--lane replay recordings (suites' --replay-dir)",
    "HARNESS_SAFETY_JUDGE": "an open_generator spec for the safety phase's LLM judge",
    "HARNESS_CODEGEN_SUBJECTS": "codegen subjects to run (suites' --codegen-subjects)",
    "HARNESS_CODEGEN_MODEL_TASKS": "codegen: first N tasks for the model subject",
    "HARNESS_CODEGEN_DEEP_TASKS": "codegen: tasks that get the whole k ladder (N or 'all')",
    "HARNESS_CODEGEN_TRAIN_CORPUS": "codegen: training corpus for the contamination gate",
    "HARNESS_AGENTDOJO_VENV": "the AgentDojo lane's virtual environment",
    "HARNESS_COMPRESSION_QAT": "compression: BitNet QAT overrides (suites' --compression-qat)",
    "HARNESS_COMPRESSION_TASK": "compression: the accuracy task (suites' --compression-task)",
    "HARNESS_FORGE_CONFIG": "forge: a JSON file of ForgeConfig fields",
    "HARNESS_FORGE_DATA": "forge: the task data path (ForgeConfig.data_path)",
    "HARNESS_CODE_EDIT_CONFIG": "code_edit: a YAML file of CodeEditPipelineConfig fields",
    "HARNESS_CODE_EDIT_DATA": "code_edit: a processed data root to read instead of building",
    "DOCKER_HOST": "the Docker daemon the sandbox pool talks to (Docker's own variable)",
    "PYTEST_XDIST_WORKER": "this process's xdist worker id (set by pytest-xdist)",
    "PYTEST_XDIST_WORKER_COUNT": "number of xdist workers (set by pytest-xdist)",
}

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})

_WANDB_ALIASES = {"dryrun": WandbMode.OFFLINE, "run": WandbMode.ONLINE}


class Settings(BaseModel):
    """Resolved roots; ``sources`` says which variable (or ``default``) set each one."""

    model_config = ConfigDict(frozen=True)

    cache_dir: Path
    data_dir: Path
    models_dir: Path
    wandb_mode: WandbMode
    wandb_dir: Path
    sources: dict[str, str]
    docker_hosts: tuple[str, ...] = ()
    #: recompute every cached artifact (``HARNESS_NO_CACHE``; ``harness run --no-cache``)
    no_cache: bool = False
    #: the run a ``no_cache`` refresh belongs to (``HARNESS_RUN_ID``; xdist's testrun_uid)
    run_id: str | None = None
    #: the :data:`OPTION_VARS` that are set (name → value)
    options: dict[str, str] = {}

    def env(self, name: str) -> str | None:
        """The value of declared variable ``name`` (:data:`OPTION_VARS`), or None when unset."""
        if name not in OPTION_VARS:
            raise HarnessError(
                f"environment variable {name!r} is not declared in harness.settings.OPTION_VARS; "
                "declare it there (and in docs/settings.md) before reading it"
            )
        return self.options.get(name)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Resolve every setting from ``environ`` (default: ``os.environ``), read-only."""
        env = os.environ if environ is None else environ
        sources: dict[str, str] = {}

        def pick(name: str) -> str | None:
            for var in ENV_NAMES[name]:
                value = env.get(var, "").strip()
                if value:
                    sources[name] = var
                    return value
            sources[name] = "default"
            return None

        xdg = env.get("XDG_CACHE_HOME", "").strip()
        default_cache = (Path(xdg) if xdg else Path.home() / ".cache") / "gate-harness"
        cache = _path(pick("cache_dir")) or default_cache
        mode_raw = (pick("wandb_mode") or "offline").lower()
        try:
            mode = _WANDB_ALIASES.get(mode_raw) or WandbMode(mode_raw)
        except ValueError:
            raise HarnessError(
                f"WANDB_MODE={mode_raw!r} is not one of offline, online, disabled; "
                "unset it (offline is the default) or pick one of those"
            ) from None
        no_cache_raw = env.get("HARNESS_NO_CACHE", "").strip().lower()
        if no_cache_raw not in _TRUE | _FALSE:
            raise HarnessError(
                f"HARNESS_NO_CACHE={no_cache_raw!r} is not a yes/no value; use 1 or 0"
            )
        options = {name: env[name] for name in OPTION_VARS if env.get(name, "").strip()}
        return cls(
            no_cache=no_cache_raw in _TRUE,
            run_id=env.get("HARNESS_RUN_ID", "").strip() or None,
            options=options,
            cache_dir=cache,
            data_dir=_path(pick("data_dir")) or cache / "data",
            models_dir=_path(pick("models_dir")) or cache / "models",
            wandb_mode=mode,
            wandb_dir=_path(pick("wandb_dir")) or cache / "wandb",
            sources=sources,
            docker_hosts=_hosts(pick("docker_hosts")),
        )

    def cache(self, name: str, *, root: str | Path | None = None) -> Path:
        """``<root or cache_dir>/<name>``: one named cache (``--cache-dir`` passes ``root``)."""
        return (Path(root).expanduser() if root else self.cache_dir) / name

    @property
    def generations_dir(self) -> Path:
        return self.cache("generations")

    @property
    def judgements_dir(self) -> Path:
        return self.cache("judgements")

    @property
    def judges_dir(self) -> Path:
        return self.cache("judges")

    @property
    def circuit_breaker_dir(self) -> Path:
        return self.cache("circuit_breaker")

    @property
    def sandbox_dir(self) -> Path:
        return self.cache("sandbox")

    def table(self) -> list[tuple[str, str, str]]:
        """(setting, value, source) rows for ``python -m harness.settings``."""
        rows = [
            (name, _text(getattr(self, name)), self.sources.get(name, "default"))
            for name in ENV_NAMES
        ]
        derived = ("generations", "judgements", "judges", "circuit_breaker", "sandbox")
        rows += [(f"{d}_dir", str(self.cache(d)), "cache_dir") for d in derived]
        rows.append(("no_cache", str(self.no_cache).lower(), "HARNESS_NO_CACHE"))
        return rows


def _text(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(value) or "(DOCKER_HOST or the local socket)"
    return str(value)


def _hosts(value: str | None) -> tuple[str, ...]:
    """``a,b , c`` → ("a", "b", "c"); duplicates dropped, order kept."""
    return tuple(dict.fromkeys(h.strip() for h in (value or "").split(",") if h.strip()))


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


_OVERRIDES: dict[str, object] = {}


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first call (plus :func:`configure`)."""
    base = Settings.from_env()
    return base.model_copy(update=_OVERRIDES) if _OVERRIDES else base


def configure(*, no_cache: bool | None = None, run_id: str | None = None) -> Settings:
    """Override settings for this process (``--no-cache`` of the phase suites); no env writes.

    Why in-process: command-line flags (``harness run --no-cache``) must reach every
    cache of the run, and writing ``os.environ`` from library code would leak into
    child processes and other tests.
    """
    if no_cache is not None:
        _OVERRIDES["no_cache"] = no_cache
    if run_id is not None:
        _OVERRIDES["run_id"] = run_id
    get_settings.cache_clear()
    return get_settings()


def reset_settings() -> None:
    """Forget the cached settings and overrides (tests that change the environment call this)."""
    _OVERRIDES.clear()
    get_settings.cache_clear()


def env_option(name: str) -> str | None:
    """``get_settings().env(name)``: a declared variable of :data:`OPTION_VARS`, or None."""
    return get_settings().env(name)


def child_environment(*, drop_prefixes: Sequence[str] = ()) -> dict[str, str]:
    """A copy of this process's environment for a child process, minus ``drop_prefixes``.

    The one place that hands the whole environment on (e.g. the AgentDojo client must not
    inherit the harness's ``PYTHONPATH`` or OpenAI keys).
    """
    drop = tuple(drop_prefixes)
    return {k: v for k, v in os.environ.items() if not (drop and k.startswith(drop))}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.settings [NAME]``: print the table, or one value (for shell scripts)."""
    args = list(sys.argv[1:] if argv is None else argv)
    rows = get_settings().table()
    if args:
        values = {name: value for name, value, _ in rows}
        if args[0] not in values:
            print(f"unknown setting {args[0]!r}; one of: {', '.join(values)}", file=sys.stderr)
            return 2
        print(values[args[0]])
        return 0
    for name, value, source in rows:
        print(f"{name:<22} {value}  ({source})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

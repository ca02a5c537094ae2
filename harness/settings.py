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

__all__ = ["ENV_NAMES", "Settings", "WandbMode", "get_settings", "reset_settings"]


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
        return cls(
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


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first call."""
    return Settings.from_env()


def reset_settings() -> None:
    """Forget the cached settings (tests that change the environment call this)."""
    get_settings.cache_clear()


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

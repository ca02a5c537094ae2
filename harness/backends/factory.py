"""Turn a ``--model`` string into a :class:`Generator` (+ cache / replay), in one place.

Accepted model specs:

* a local checkpoint directory (``./models/tiny-code``) → :class:`HFGenerator`;
* ``http://host:port/v1#model-name`` (or https) → :class:`OpenAICompatGenerator`;
* ``vllm:<dir or hub id>`` → :class:`VLLMGenerator` (optional extra).

``lane="replay"`` ignores the backend entirely and answers from ``recording``
(the model spec only picks the recorded identity by name).
"""

from __future__ import annotations

from pathlib import Path

from harness.backends.base import Generator
from harness.backends.cache import CacheMode, CachingGenerator
from harness.errors import BackendError

__all__ = ["open_generator"]


def open_generator(
    model: str | Path,
    *,
    lane: str = "real",
    recording: Path | str | None = None,
    cache_dir: Path | str | None = None,
    cache_mode: CacheMode | str = CacheMode.USE,
    batch_size: int = 8,
    concurrency: int = 4,
) -> Generator:
    """Build the backend for ``model``; wrap it in the on-disk cache when ``cache_dir`` is set."""
    spec = str(model)
    if lane == "replay":
        from harness.backends.replay import ReplayGenerator

        if recording is None:
            raise BackendError(
                "lane 'replay' needs a recording file (e.g. fixtures/replay/<phase>.jsonl); "
                "create one with `harness replay record`"
            )
        name = spec.partition("#")[2] if "://" in spec else Path(spec).name
        return ReplayGenerator(recording, model_name=name or None)
    if lane not in ("real", "control"):
        raise BackendError(f"lane {lane!r} is not one of real, replay, control")
    inner: Generator
    if spec.startswith(("http://", "https://")):
        from harness.backends.openai_compat import OpenAICompatGenerator

        base_url, _, name = spec.partition("#")
        if not name:
            raise BackendError(
                f"model {spec!r}: an OpenAI-compatible endpoint needs the served model name "
                "after '#', e.g. http://127.0.0.1:8000/v1#my-model"
            )
        inner = OpenAICompatGenerator(base_url=base_url, model=name, concurrency=concurrency)
    elif spec.startswith("vllm:"):
        from harness.backends.vllm import VLLMGenerator

        inner = VLLMGenerator(spec.removeprefix("vllm:"))
    else:
        path = Path(spec)
        if not path.is_dir():
            raise BackendError(
                f"model {spec!r}: not a directory, URL (http://…/v1#name) or vllm:… spec; "
                "build the embedded model with `harness models build tiny-code --out "
                f"{spec}` or pass an existing checkpoint directory"
            )
        from harness.backends.hf import HFGenerator

        inner = HFGenerator.from_pretrained(path, batch_size=batch_size)
    if cache_dir is None or CacheMode(cache_mode) is CacheMode.OFF:
        return inner
    return CachingGenerator(inner, cache_dir, mode=cache_mode)

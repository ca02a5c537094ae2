"""The replay lane: answer from recorded generations, fail loudly on anything unrecorded.

A recording is a JSONL file; each line is one :class:`Recording` — the key,
the model identity, the request (content + sampling) and the generation.  The
key (:func:`recording_key`) digests exactly the model identity, the request
content and the sampling params (seed included), so a replayed answer is bound
to what it was recorded for.  Unlike the generation cache's key it does not
digest the harness code or library versions: a recording is a fact about what
a model said, and it stays valid when the code that serves it changes.  A
request whose key is absent is contract drift: :class:`~harness.errors.ReplayMiss`
names the request, what changed, and the command that re-records it.

Every generation returned is labelled ``lane="replay"``; evidence built from it
is labelled ``replay`` and is never counted as a real PASS.

A recording may have a sidecar ``<name>.manifest.json`` (written by
``harness replay record --phase …``) whose ``record_command`` is the exact
command that re-records it; a miss quotes it.  :class:`ReplayGenerator`
accepts a file or a directory of recordings (every ``*.jsonl`` in it, so one
``fixtures/replay/`` serves every phase that has recordings).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.atomic import atomic_write_jsonl
from harness.backends.base import (
    Generation,
    GenerationRequest,
    Generator,
    ModelIdentity,
    canonical_json,
    check_one_to_one,
    sha256_hex,
)
from harness.errors import BackendError, DataValidationError, ReplayMiss

__all__ = [
    "Recording",
    "ReplayGenerator",
    "load_recordings",
    "load_requests",
    "manifest_path",
    "read_manifest",
    "record",
    "recording_key",
    "write_recordings",
]


def recording_key(identity: ModelIdentity, request: GenerationRequest) -> str:
    """sha256 of (format, full model identity, request content, sampling params + seed)."""
    payload = {
        "replay": 1,
        "model": identity.model_dump(mode="json"),
        "request": request.content_dict(),
        "sampling": request.sampling.key_dict(),
    }
    return sha256_hex(canonical_json(payload))


class Recording(BaseModel):
    """One line of a recording file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    source: str | None = None  # how the model was addressed when recording (path or URL)
    request: GenerationRequest
    generation: Generation


def manifest_path(recording: Path | str) -> Path:
    """The sidecar manifest of a recording: ``codegen.jsonl`` → ``codegen.manifest.json``."""
    p = Path(recording)
    return p.with_name(p.stem + ".manifest.json")


def read_manifest(recording: Path | str) -> dict[str, Any]:
    """The recording's manifest, or ``{}`` when it has none (a hand-made recording)."""
    m = manifest_path(recording)
    if not m.is_file():
        return {}
    try:
        data = json.loads(m.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataValidationError(
            f"{m}: not valid JSON ({exc.msg}, line {exc.lineno}); re-record the fixture"
        ) from exc
    if not isinstance(data, dict):
        raise DataValidationError(f"{m}: must be a JSON object; re-record the fixture")
    return data


def _record_command(source: str | None, path: Path) -> str:
    command = read_manifest(path).get("record_command") if path.suffix == ".jsonl" else None
    if isinstance(command, str) and command:
        return command
    model = source or "<model dir or name>"
    return f"harness replay record --model {model} --requests <requests.jsonl> --out {path}"


def _recording_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise ReplayMiss(
                f"replay directory {path} holds no *.jsonl recording; create one with: "
                f"{_record_command(None, path / '<phase>.jsonl')}"
            )
        return files
    return [path]


def load_recordings(path: Path | str) -> list[Recording]:
    """Read and validate a recording file; a bad line raises naming file, line and problem."""
    p = Path(path)
    if not p.is_file():
        raise ReplayMiss(
            f"replay recording {p} does not exist; create it with: {_record_command(None, p)}"
        )
    out: list[Recording] = []
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = Recording.model_validate_json(line)
            except ValidationError as exc:
                raise DataValidationError(
                    f"{p}:{lineno}: not a valid replay recording: {exc.errors()[0]['loc']} "
                    f"{exc.errors()[0]['msg']}; re-record with: {_record_command(None, p)}"
                ) from exc
            expected = recording_key(rec.generation.model, rec.request)
            if rec.key != expected:
                raise DataValidationError(
                    f"{p}:{lineno}: field 'key' is {rec.key[:16]}… but the recorded identity, "
                    f"request and sampling hash to {expected[:16]}… (file edited by hand?); "
                    f"re-record with: {_record_command(rec.source, p)}"
                )
            out.append(rec)
    return out


def write_recordings(path: Path | str, recordings: Iterable[Recording]) -> int:
    """Merge ``recordings`` into ``path`` (new keys win) atomically; return entries written."""
    p = Path(path)
    merged: dict[str, Recording] = {}
    if p.is_file():
        merged.update((r.key, r) for r in load_recordings(p))
    merged.update((r.key, r) for r in recordings)
    atomic_write_jsonl(p, (merged[key].model_dump_json() for key in sorted(merged)))
    return len(merged)


def load_requests(path: Path | str) -> list[GenerationRequest]:
    """A JSONL file with one :class:`GenerationRequest` per line (what ``replay record`` reads)."""
    p = Path(path)
    if not p.is_file():
        raise DataValidationError(f"requests file {p} does not exist")
    out: list[GenerationRequest] = []
    seen: set[str] = set()
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            req = GenerationRequest.model_validate_json(line)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise DataValidationError(
                f"{p}:{lineno}: field {'.'.join(map(str, err['loc'])) or '<line>'}: "
                f"{err['msg']} (value {str(err.get('input'))[:60]!r}); each line must be a "
                'request like {"request_id": "a", "prompt": "def f():", '
                '"sampling": {"max_tokens": 64}}'
            ) from exc
        if req.request_id in seen:
            raise DataValidationError(
                f"{p}:{lineno}: field request_id: duplicate value {req.request_id!r}; ids must "
                "be unique"
            )
        seen.add(req.request_id)
        out.append(req)
    return out


def record(
    generator: Generator,
    requests: Sequence[GenerationRequest],
    out: Path | str,
    *,
    source: str | None = None,
) -> int:
    """Generate ``requests`` with a real backend and merge them into the recording ``out``."""
    gens = generator.generate(requests)
    check_one_to_one(requests, gens, backend="replay record")
    for g in gens:
        if g.lane != "real":
            raise BackendError(
                f"replay record: generation {g.request_id!r} came from lane {g.lane!r}; "
                "record from a real backend only"
            )
    recs = [
        Recording(
            key=recording_key(g.model, r),
            source=source,
            request=r,
            generation=g.model_copy(update={"cached": False}),
        )
        for r, g in zip(requests, gens, strict=True)
    ]
    return write_recordings(out, recs)


class ReplayGenerator:
    """Serve recorded generations for one model identity.

    ``identity`` defaults to the only identity in the file; with several
    recorded models pass ``identity=`` or ``model_name=``.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        identity: ModelIdentity | None = None,
        model_name: str | None = None,
    ) -> None:
        self.path = Path(path)
        recs: list[Recording] = []
        self._file_of: dict[str, Path] = {}  # request_id → recording file (for miss hints)
        self._recorded: dict[str, GenerationRequest] = {}  # request_id → recorded request
        for f in _recording_files(self.path):
            for r in load_recordings(f):
                recs.append(r)
                self._file_of[r.request.request_id] = f
                self._recorded[r.request.request_id] = r.request
        identities: dict[str, ModelIdentity] = {
            r.generation.model.digest(): r.generation.model for r in recs
        }
        self._sources = {r.generation.model.digest(): r.source for r in recs}
        if identity is None:
            pool = [i for i in identities.values() if model_name in (None, i.name)]
            if len(pool) != 1:
                names = sorted({i.name for i in identities.values()}) or ["<none>"]
                raise ReplayMiss(
                    f"{self.path}: cannot choose a model identity (asked for "
                    f"{model_name or 'the only one'}; recorded: {', '.join(names)}); pass "
                    "identity= or model_name=, or record with: "
                    f"{_record_command(None, self.path)}"
                )
            identity = pool[0]
        self._identity = identity
        self._by_key: dict[str, Generation] = {r.key: r.generation for r in recs}

    @property
    def identity(self) -> ModelIdentity:
        return self._identity

    def __len__(self) -> int:
        return len(self._by_key)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        out: list[Generation] = []
        for req in requests:
            key = recording_key(self._identity, req)
            gen = self._by_key.get(key)
            if gen is None:
                raise ReplayMiss(self._miss_message(req, key))
            out.append(
                gen.model_copy(
                    update={"request_id": req.request_id, "lane": "replay", "cached": False}
                )
            )
        check_one_to_one(requests, out, backend="replay")
        return out

    def _miss_message(self, req: GenerationRequest, key: str) -> str:
        """Say what was asked, what (if anything) was recorded under that id, and the fix."""
        src = self._sources.get(self._identity.digest())
        where = self._file_of.get(req.request_id)
        target = where or (
            self.path if self.path.suffix == ".jsonl" else self.path / "<phase>.jsonl"
        )
        head = (
            f"replay miss for request {req.request_id!r}: key {key} (model "
            f"{self._identity.name} @ {self._identity.digest()[:12]}, request "
            f"{req.content_digest()[:12]}, sampling {_short(req.sampling.key_dict())}) "
            f"is not in {self.path}. "
        )
        old = self._recorded.get(req.request_id)
        if old is None:
            why = "The suite asked for something never recorded (contract drift). "
        else:
            changed = [
                name
                for name, a, b in (
                    ("prompt", old.prompt, req.prompt),
                    ("messages", old.messages, req.messages),
                    ("tools", old.tools, req.tools),
                    ("sampling", old.sampling.key_dict(), req.sampling.key_dict()),
                )
                if a != b
            ]
            what = ", ".join(changed) or "model identity"
            why = (
                f"A request with this id was recorded in {where} but its {what} changed "
                f"since (recorded request {old.content_digest()[:12]}; contract drift). "
            )
        return head + why + f"Re-record with: {_record_command(src, target)}"


def _short(d: dict[str, Any]) -> str:
    return json.dumps(d, sort_keys=True, separators=(",", ":"))

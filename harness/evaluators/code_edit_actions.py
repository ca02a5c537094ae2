"""Stage 1 validator: apply model-written ast-grep actions in the Docker sandbox and judge them.

A model's action is hostile input.  For each held-out record the validator

1. **parses** the raw text (:func:`extract_action_text` then
   :func:`~harness.data.code_edit.action.parse_action`: size-capped, no YAML aliases,
   errors name the field);
2. **applies** it to the record's ``pre_code`` with the real ``ast-grep`` binary inside
   the hardened sandbox — one program per item, all items of a batch in one
   ``Sandbox.run`` call so the warm pool runs them in parallel; each program has its
   own fresh working directory and only ever sees its own rule and code;
3. **judges** the rewritten code: success when it equals ``post_code`` after
   :func:`normalize_code`, or — for records with ``tests`` — when ``applied + tests``
   passes in the sandbox (completion proof required, see docs/sandbox.md).

Why each item's result cannot be forged: the apply program is ours; the rule only
reaches the binary as a file, and the binary's output goes to a file, never to stdout,
so the only channel back is one line (a ``repr``'d dict) behind a per-batch random
prefix.  The exact-match path runs none of the rewritten code.  The tests path does
run it, so a rewrite that *introduces* imports, private/dunder attribute access or
reflective builtins absent from the record's own code is refused before running
(``unsafe_rewrite``): otherwise an injected ``import doctest`` plus an assignment to
``doctest.DocTestRunner.run`` could patch the test harness that follows it.  Each
program is a separate sandbox item, so nothing one action does reaches another item;
a timeout, crash or giant output costs only that item.  ``parsed`` means the action
parsed *and* the binary accepted the rule.
"""

from __future__ import annotations

import ast
import builtins
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from harness.data.code_edit.action import ActionError, AstGrepAction, parse_action
from harness.data.code_edit.schema import NormalizedRecord, Split
from harness.errors import HarnessError, SandboxError
from harness.outcomes import Outcome
from sandbox.base import ExecResult, ExecStatus, Program, Sandbox

__all__ = [
    "APPLY_TIMEOUT_S",
    "REASONS",
    "TESTS_TIMEOUT_S",
    "ActionOutcome",
    "ActionSubject",
    "extract_action_text",
    "heldout_action_records",
    "normalize_code",
    "outcomes_for_gate",
    "unsafe_additions",
    "validate_actions",
]

APPLY_TIMEOUT_S = 10.0
TESTS_TIMEOUT_S = 10.0
#: largest rewritten file read back (bytes); a rule that multiplies the code is refused
MAX_APPLIED_BYTES = 256 * 1024
_BINARY = "/usr/local/bin/ast-grep"
_SUFFIX = {"python": ".py", "javascript": ".js", "typescript": ".ts", "rust": ".rs", "go": ".go"}
#: every ``reason`` starts with one of these categories, then ": " and a detail
REASONS = (
    "matches_post_code",
    "tests_pass",
    "parse_error",
    "rule_rejected",
    "apply_error",
    "no_change",
    "mismatch",
    "unsafe_rewrite",
    "tests_fail",
    "sandbox_error",
)

#: a function of the held-out records returning one raw action string per record
ActionSubject = Callable[[Sequence[NormalizedRecord]], Sequence[str]]


@dataclass(frozen=True)
class ActionOutcome:
    """One judged action; ``reason`` is ``"<category>: <detail>"`` (categories: REASONS)."""

    item_id: str
    parsed: bool
    success: bool
    reason: str
    applied_code: str | None


def normalize_code(text: str) -> str:
    """What "equals post_code" compares: ``\\r\\n``/``\\r`` → ``\\n``, trailing whitespace of
    every line dropped, leading/trailing blank lines dropped.  Indentation, blank lines
    inside the code and everything else must match exactly."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


#: the opening line of a fence (anchored: tried only where ``` occurs)
_FENCE_OPEN = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n")


def _between(raw: str, start: int, close: str) -> str | None:
    end = raw.find(close, start)
    return None if end < 0 else raw[start:end]


def extract_action_text(raw: str) -> str:
    """The action inside ``raw``: an ``<action>…</action>`` block, else the first fenced
    block, else ``raw`` itself.  Nothing else is repaired, so prose around a rule that
    is neither tagged nor fenced is a parse error, as it would be for the binary.

    Linear in ``len(raw)`` (``str.find``, no lazy ``.*?`` search): a regex search for a
    tag pair rescans the rest of the text from every unclosed ``<action>``, so a model
    output of repeated openers took quadratic time (64 kB: 3 s; megabytes: hours)."""
    tag = raw.find("<action>")
    if tag >= 0:
        found = _between(raw, tag + len("<action>"), "</action>")
        if found is not None:
            return found
    at = raw.find("```")
    while at >= 0:
        opening = _FENCE_OPEN.match(raw, at)
        if opening:  # the first complete opening decides: no closer after it, none later
            found = _between(raw, opening.end(), "```")
            return raw if found is None else found
        at = raw.find("```", at + 1)
    return raw


def heldout_action_records(rows: Iterable[NormalizedRecord]) -> list[NormalizedRecord]:
    """The judged set of the action gates: test-split records an action can be judged on —
    those with a ground-truth action (its ``post_code`` is reachable by a rule) or with
    tests (success when they pass), e.g. CanItEdit / HumanEvalFix rows."""
    return [r for r in rows if r.split is Split.TEST and (r.action is not None or r.tests)]


# ---- in-sandbox programs ------------------------------------------------------------------
def _apply_program(action: AstGrepAction, record: NormalizedRecord, prefix: str) -> str:
    """Source of the program that rewrites ``pre_code`` with the rule (our code; data as
    ``repr`` literals, so nothing in the action is ever parsed as Python).

    ``os.posix_spawn`` rather than ``subprocess`` and ``repr`` rather than ``json``: each
    import is paid again by every forked program (≈2.5× the items/s, measured).  A
    binary that hangs is killed by the sandbox's own timeout (the item's ``apply_error``).
    """
    name = "input" + _SUFFIX.get(record.language, ".txt")
    argv = ["ast-grep", "scan", "-r", "rule.yml", "--update-all", name]
    return (
        "import os\n"
        f"RULE, CODE, NAME = {action.rule_yaml()!r}, {record.pre_code!r}, {name!r}\n"
        "with open('rule.yml', 'w', encoding='utf-8') as f:\n    f.write(RULE)\n"
        "with open(NAME, 'w', encoding='utf-8') as f:\n    f.write(CODE)\n"
        "err = os.open('stderr.txt', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)\n"
        "acts = [(os.POSIX_SPAWN_OPEN, 0, '/dev/null', os.O_RDONLY, 0),\n"
        "        (os.POSIX_SPAWN_DUP2, err, 1), (os.POSIX_SPAWN_DUP2, err, 2)]\n"
        "try:\n"
        f"    pid = os.posix_spawn({_BINARY!r}, {argv!r}, {{}}, file_actions=acts)\n"
        "    rc = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])\n"
        "except FileNotFoundError:\n    rc = -127\n"
        "os.close(err)\n"
        "with open('stderr.txt', 'rb') as f:\n"
        "    f.seek(max(0, os.fstat(f.fileno()).st_size - 600))\n"
        "    msg = f.read().decode('utf-8', 'replace')\n"
        "with open(NAME, 'rb') as f:\n"
        f"    data = f.read({MAX_APPLIED_BYTES + 1})\n"
        f"big = len(data) > {MAX_APPLIED_BYTES}\n"
        "out = {'rc': rc, 'err': msg, 'big': big,"
        " 'code': None if big else data.decode('utf-8', 'replace')}\n"
        f"print({prefix!r} + repr(out))\n"
    )


def _parse_apply(result: ExecResult, prefix: str) -> dict[str, object] | None:
    """The apply program's report, or None when it did not finish cleanly."""
    if result.status is not ExecStatus.PASSED:
        return None
    for line in reversed(result.stdout.splitlines()):
        if line.startswith(prefix):
            try:  # a dict of str/int/bool/None literals written by our own program
                obj = ast.literal_eval(line[len(prefix) :])
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return None
            return obj if isinstance(obj, dict) else None
    return None


_REFLECTIVE = frozenset(
    {"exec", "eval", "compile", "__import__", "globals", "locals", "vars", "getattr"}
    | {"setattr", "delattr", "open", "breakpoint", "input", "memoryview", "__builtins__"}
    | {"type"}  # type(name, bases, {"__eq__": ...}) builds a class without a class statement
)


def _dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _defined_dunders(node: ast.AST) -> set[str]:
    """Dunder names a node defines or spells: ``def __eq__``, ``__eq__ = …`` in a class
    body, ``{"__eq__": …}``.  An object whose ``__eq__`` always answers True passes every
    ``assert f(x) == y`` with the tests running to their end (proof and all)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {f"def {node.name}"} if _dunder(node.name) else set()
    if isinstance(node, ast.Name) and _dunder(node.id):
        return {node.id}
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and _dunder(node.value):
        return {repr(node.value)}
    return set()


def _risky_features(code: str) -> set[str] | None:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {f"import {a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(f"import {node.module or '.'}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            found.add(f".{node.attr}")
        elif isinstance(node, ast.Name) and node.id in _REFLECTIVE:
            found.add(node.id)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            found |= {f"global {n}" for n in node.names}
        found |= _defined_dunders(node)
    return found | _module_shadows(tree)


_BUILTIN_NAMES = frozenset(dir(builtins))
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _module_shadows(tree: ast.AST) -> set[str]:
    """Builtins rebound at module level (``def abs``, ``range = …``, ``class list``): the
    tests run in the same module, so ``range = lambda *a: []`` empties every
    ``for x in range(n): assert …`` and ``def abs(x): return 0`` passes every tolerance
    check.  Names bound inside a function or class are local and not listed."""
    found: set[str] = set()
    todo = list(ast.iter_child_nodes(tree))
    while todo:
        node = todo.pop()
        if isinstance(node, _SCOPES):
            name = getattr(node, "name", None)
            if name in _BUILTIN_NAMES:
                found.add(f"shadows {name}")
            continue  # its body binds its own names
        if (
            isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Store)
            and node.id in _BUILTIN_NAMES
        ):
            found.add(f"shadows {node.id}")
        todo.extend(ast.iter_child_nodes(node))
    return found


def unsafe_additions(applied: str, record: NormalizedRecord) -> list[str]:
    """Imports, ``._private``/dunder attributes, reflective builtins, ``global``
    statements, dunder definitions (``def __eq__``, ``"__eq__"``) and module-level
    rebinding of builtins (``range = …``) in ``applied`` that neither ``pre_code`` nor
    ``post_code`` contain — what an injected payload needs to patch the test harness that
    runs after it, to return an object equal to anything, or to hollow out the tests.
    Code that does not parse has nothing to add (its tests fail on their own)."""
    mine = _risky_features(applied)
    if mine is None:
        return []
    allowed: set[str] = set()
    for code in (record.pre_code, record.post_code):
        allowed |= _risky_features(code) or set()
    return sorted(mine - allowed)


# ---- the validator -------------------------------------------------------------------------
@dataclass
class _Item:
    record: NormalizedRecord
    action: AstGrepAction | None = None
    outcome: ActionOutcome | None = None
    applied: str | None = None


def _parse_all(records: Sequence[NormalizedRecord], raw_actions: Sequence[str]) -> list[_Item]:
    items: list[_Item] = []
    for record, raw in zip(records, raw_actions, strict=True):
        item = _Item(record)
        if not isinstance(raw, str):
            item.outcome = ActionOutcome(
                record.id, False, False, f"parse_error: got {type(raw).__name__}, not str", None
            )
        else:
            try:
                item.action = parse_action(extract_action_text(raw))
            except ActionError as exc:
                item.outcome = ActionOutcome(record.id, False, False, f"parse_error: {exc}", None)
        items.append(item)
    return items


def _judge_applied(item: _Item, report: dict[str, object] | None, result: ExecResult) -> None:
    rid = item.record.id
    if report is None:
        kind = "sandbox_error" if result.status is ExecStatus.SANDBOX_ERROR else "apply_error"
        detail = f"{result.status.value}: {result.detail} {result.stderr[-300:]}".strip()
        item.outcome = ActionOutcome(rid, True, False, f"{kind}: {detail}", None)
        return
    rc, err = report.get("rc"), str(report.get("err", ""))
    if rc == -127:
        raise SandboxError(
            "the sandbox image has no ast-grep binary; fix: run `harness sandbox build` "
            "(it builds the ast-grep image) and pass DockerSandbox(image=ASTGREP_IMAGE)"
        )
    if rc == 8:  # ast-grep: the rule file does not describe a valid rule
        item.outcome = ActionOutcome(rid, False, False, f"rule_rejected: {err.strip()}", None)
    elif rc != 0 or report.get("big") or not isinstance(report.get("code"), str):
        why = "rewritten file too large" if report.get("big") else f"exit {rc}: {err.strip()}"
        item.outcome = ActionOutcome(rid, True, False, f"apply_error: {why}", None)
    else:
        item.applied = str(report["code"])
        applied = normalize_code(item.applied)
        if applied == normalize_code(item.record.post_code):
            item.outcome = ActionOutcome(
                rid, True, True, "matches_post_code: equal after normalize_code", item.applied
            )
        elif applied == normalize_code(item.record.pre_code):
            item.outcome = ActionOutcome(
                rid, True, False, "no_change: the rule matched nothing", item.applied
            )
        elif not item.record.tests or item.record.language != "python":
            why = "no tests" if not item.record.tests else "tests run for python records only"
            item.outcome = ActionOutcome(
                rid, True, False, f"mismatch: differs from post_code ({why})", item.applied
            )


def _run_tests(items: list[_Item], sandbox: Sandbox, *, timeout_s: float) -> None:
    pending: list[_Item] = []
    for item in items:
        if item.outcome is not None or item.applied is None:
            continue
        bad = unsafe_additions(item.applied, item.record)
        if bad:
            item.outcome = ActionOutcome(
                item.record.id,
                True,
                False,
                f"unsafe_rewrite: introduces {', '.join(bad[:8])}",
                item.applied,
            )
        else:
            pending.append(item)
    if not pending:
        return
    programs = [
        Program(f"{i.applied}\n\n{i.record.tests}", id=f"tests:{n}") for n, i in enumerate(pending)
    ]
    results = sandbox.run(programs, timeout_s=timeout_s)
    for item, res in zip(pending, results, strict=True):
        if res.status is ExecStatus.PASSED:
            reason = "tests_pass: applied code + tests ran to the end"
        elif res.status is ExecStatus.SANDBOX_ERROR:
            reason = f"sandbox_error: {res.detail}"
        else:
            reason = f"tests_fail: {res.status.value}: {res.detail} {res.stderr[-200:]}".strip()
        item.outcome = ActionOutcome(
            item.record.id, True, res.status is ExecStatus.PASSED, reason, item.applied
        )


def _default_sandbox() -> Sandbox:
    from sandbox.astgrep_image import ensure_astgrep_image
    from sandbox.docker_pool import DockerSandbox

    return DockerSandbox(image=ensure_astgrep_image())


def validate_actions(
    records: Sequence[NormalizedRecord],
    raw_actions: Sequence[str],
    *,
    sandbox: Sandbox | None = None,
    tests_timeout_s: float = TESTS_TIMEOUT_S,
) -> list[ActionOutcome]:
    """One :class:`ActionOutcome` per record, in input order (see the module docstring).

    ``tests_timeout_s`` bounds each record's tests run (a rewrite that never returns
    costs that item a ``tests_fail: timeout``).

    ``sandbox`` must run an image that carries ast-grep (``ASTGREP_IMAGE``); without one a
    :class:`~sandbox.docker_pool.DockerSandbox` on that image is built for this call.
    """
    if len(records) != len(raw_actions):
        raise HarnessError(
            f"validate_actions: {len(records)} records but {len(raw_actions)} actions; "
            "pass one raw action string per record, in the same order"
        )
    items = _parse_all(records, raw_actions)
    todo = [i for i in items if i.action is not None]
    own = sandbox is None and bool(todo)
    sb = _default_sandbox() if own else sandbox
    try:
        if todo and sb is not None:
            prefix = f"@@apply-{secrets.token_hex(8)}@@"
            programs = [
                Program(_apply_program(i.action, i.record, prefix), id=f"apply:{n}")
                for n, i in enumerate(todo)
                if i.action is not None
            ]
            results = sb.run(programs, timeout_s=APPLY_TIMEOUT_S, output_cap=2 * MAX_APPLIED_BYTES)
            for item, res in zip(todo, results, strict=True):
                _judge_applied(item, _parse_apply(res, prefix), res)
            _run_tests(items, sb, timeout_s=tests_timeout_s)
    finally:
        if own and sb is not None:
            sb.close()
    return [
        i.outcome
        or ActionOutcome(
            i.record.id, i.action is not None, False, "sandbox_error: not judged", None
        )
        for i in items
    ]


def outcomes_for_gate(results: Sequence[ActionOutcome], metric: str) -> list[Outcome]:
    """Gate outcomes (value 1 = parsed / succeeded) for ``metric`` ``parse`` or ``success``;
    ``raw`` keeps the reason and the rewritten code, and flags sandbox errors so the
    decision layer's guard counts them."""
    if metric not in ("parse", "success"):
        raise HarnessError(f"metric={metric!r} is invalid: use 'parse' or 'success'")
    out: list[Outcome] = []
    for r in results:
        value = r.parsed if metric == "parse" else r.success
        raw = {
            "reason": r.reason,
            "applied_code": r.applied_code,
            "sandbox_error": r.reason.startswith("sandbox_error"),
        }
        out.append(Outcome(item_id=r.item_id, value=float(value), raw=raw))
    return out

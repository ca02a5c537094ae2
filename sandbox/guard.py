"""Guarded check programs: model code cannot forge the result of the hidden test.

Why: a HumanEval check is ``assert candidate(x) == y`` (or ``abs(candidate(x) - y) <
1e-6``), run in the same interpreter as the model's code.  A completion that returns
an object whose ``__eq__`` always says ``True``, or that rebinds ``abs``/``range`` in
``builtins``, or patches ``math.fabs``, makes every assert hold — a forged pass that
the sandbox's completion proof cannot see (the test really did run to its end).  A
static scan of the completion is easy to evade (``getattr``, ``exec`` of a string), so
the defence here holds at run time, inside the program.

:func:`guarded_program` assembles one program whose only module-level statements are
two function definitions and one call.  In order, the call:

1. **Snapshots before any model code runs**: the ``builtins`` bindings, the modules
   the trusted test and setup import (``sys.modules`` entry, module dict, and the
   dicts of classes defined there, e.g. ``random.Random``), as immutable tuples held
   in the fast locals of a running frame; the builtins and functions the guard uses
   are bound the same way (never looked up later).  It installs an audit hook that
   refuses to swap a function's ``__code__``/``__defaults__``/``__kwdefaults__`` and
   refuses further audit hooks (a hook would run model code inside the check).
2. runs the untrusted code (``exec``) in a namespace of its own;
3. runs the trusted setup and test in a **fresh namespace** whose ``__builtins__`` is
   a copy of the snapshot (so the test's helpers, e.g. HumanEval/32's ``poly``, are
   the dataset's, not the model's);
4. hands the test a **guarded candidate**: a bound method (immutable) onto a running
   generator that calls the model's function and, after every call, first calms the
   process (Python signal handlers reset, thread switching and cyclic GC off, so no
   model code can run between the check and the assert), then **rebuilds the return
   value** from exact builtin types only (``int float complex bool str bytes None``
   and ``list tuple dict set frozenset`` recursively; subclasses of these are reduced
   to their builtin value through the base type's C slots, never their own methods;
   anything else fails with ``unsafe_return``), checks the arguments it was given
   still hold only such values, and **verifies every snapshot** (a replaced binding
   fails with ``tampered``);
5. verifies again after the test and only then returns (the driver's completion
   proof follows).

A failure raises ``AssertionError("gate-harness guard: unsafe_return: …")`` (or
``tampered``) in the test; :func:`guard_reason` reads it back from stderr.  The
state the guard trusts is immutable or lives in fast locals of running frames, which
CPython 3.11 (the sandbox image) does not let other code rebind.  Residual risks
(docs/sandbox.md): ctypes (voids the proof already), mutable state nested below the
snapshotted dicts, and CPython ≥ 3.13 where ``frame.f_locals`` writes through.
"""

from __future__ import annotations

import ast
import re

__all__ = ["GUARD_MARK", "guard_reason", "guarded_program", "imported_modules"]

#: prefix of every guard failure message (also what :func:`guard_reason` looks for)
GUARD_MARK = "gate-harness guard: "
_REASON = re.compile(re.escape(GUARD_MARK) + r"(unsafe_return|tampered)\b[^\n]*")
#: modules always snapshotted: the ones HumanEval tests and prompts use
_ALWAYS = ("math",)

# The program text.  Rules that keep it sound (tests/sandbox/test_guard.py checks them):
# ``__gh_main`` runs first and may look names up until it runs the model's code (nothing
# has been tampered with yet), none after; every other function uses only its arguments,
# locals and constants — no global, builtin or closure lookup — so nothing model code can
# rebind reaches them.
_TEMPLATE = """\
def __gh_main(code, setup, test, entry, modnames):
    import builtins, sys, gc, _signal
    for name in modnames:
        try:
            __import__(name)
        except ImportError:
            pass
    snap = tuple(vars(builtins).items())
    classes = []
    mods = []
    for name in modnames:
        mod = sys.modules.get(name)
        if mod is None:
            continue
        mods.append((sys.modules, ((name, mod),), False))
        mods.append((vars(mod), tuple(vars(mod).items()), False))
        for value in vars(mod).values():
            if isinstance(value, type) and getattr(value, "__module__", "") == name:
                classes.append((vars(value), tuple(vars(value).items()), False))
    sigs = tuple(s for s in _signal.valid_signals() if s not in (9, 19))
    calm = (sys.setswitchinterval, gc.disable, _signal.getsignal, _signal.signal, sigs,
            _signal.default_int_handler)
    K = (type, id, len, isinstance, issubclass, AssertionError, BaseException, int, float,
         complex, bool, str, bytes, type(None), list, tuple, dict, set, frozenset,
         int.__int__, float.__float__, str.__str__, list.__iter__, tuple.__iter__,
         dict.items, set.__iter__, frozenset.__iter__, calm, __gh_rebuild, __gh_intact,
         MARK, repr, StopIteration, type.__dict__["__name__"].__get__, sys._getframe,
         __gh_check.__code__, __gh_pure)
    refs = tuple(mods + classes)
    check = __gh_check
    rest = (__gh_loop, __gh_pack, __gh_calm, exec, compile, dict, tuple, callable, sorted,
            type(__gh_pack).__get__)
    run = exec
    completion = compile(code, "<completion>", "exec")
    sys.addaudithook(__gh_hook)
    g = {"__name__": "__main__", "__builtins__": builtins}
    # from here on no global or builtin name is looked up: model code may rebind them all
    run(completion, g)
    return check(K, g, setup, test, entry, snap, refs, *rest)


def __gh_hook(event, args, fail=AssertionError):
    if event == "object.__setattr__" and args[1] in ("__code__", "__defaults__",
                                                     "__kwdefaults__"):
        raise fail(MARK + "tampered: a function's code or defaults were replaced")
    if event == "sys.addaudithook":
        raise fail(MARK + "tampered: a second audit hook could run code inside the check")


def __gh_calm(K):
    setswitch, gc_off, getsig, setsig, sigs, int_handler = K[27]
    setswitch(1000.0)
    gc_off()
    for s in sigs:
        h = getsig(s)
        if h is not None and K[0](h) is not K[7] and h is not int_handler:
            setsig(s, 0)


def __gh_intact(K, refs):
    for d, items, exact in refs:
        if exact and K[2](d) != K[2](items):
            return K[31](K[2](d) - K[2](items)) + " name(s) added to a guarded namespace"
        for key, value in items:
            if d.get(key, refs) is not value:
                return "guarded binding " + K[31](key) + " was replaced"
    return ""


def __gh_rebuild(K, v, depth, memo):
    t = K[0](v)
    if t is K[7] or t is K[8] or t is K[9] or t is K[10] or t is K[11] or t is K[12] \\
            or t is K[13]:
        return True, v
    if depth > 100:
        return False, "a value nested deeper than 100 levels"
    known = memo.get(K[1](v))
    if known is not None:
        return True, known[1]
    sub = K[4]
    if sub(t, K[10]) or sub(t, K[12]) or sub(t, K[9]):
        return False, "a value of type " + K[33](t)
    if sub(t, K[7]):
        return True, K[19](v)
    if sub(t, K[8]):
        return True, K[20](v)
    if sub(t, K[11]):
        return True, K[21](v)
    rb = K[28]
    if sub(t, K[14]):
        out = []
        memo[K[1](v)] = (v, out)
        for item in K[22](v):
            ok, got = rb(K, item, depth + 1, memo)
            if not ok:
                return False, got
            out.append(got)
        return True, out
    if sub(t, K[16]):
        out = {}
        memo[K[1](v)] = (v, out)
        for key, item in K[24](v):
            ok, k2 = rb(K, key, depth + 1, memo)
            if not ok:
                return False, k2
            ok, v2 = rb(K, item, depth + 1, memo)
            if not ok:
                return False, v2
            out[k2] = v2
        return True, out
    for base, it in ((K[15], K[23]), (K[17], K[25]), (K[18], K[26])):
        if sub(t, base):
            items = []
            for item in it(v):
                ok, got = rb(K, item, depth + 1, memo)
                if not ok:
                    return False, got
                items.append(got)
            made = base(items)
            memo[K[1](v)] = (v, made)
            return True, made
    return False, "a value of type " + K[33](t)


def __gh_pure(K, refs, skip):
    # (container, was it builtin-only, repr of its builtin copy) for every container the
    # test holds — its frames' locals from the candidate's caller up to the guard, and the
    # check namespace — except what it passes to the candidate: model code reaching them
    # through frames must not change them (a repr, immutable, is what the guard keeps)
    containers = (K[14], K[15], K[16], K[17], K[18])
    values = ()
    f = K[34](3)
    while f is not None and f.f_code is not K[35]:
        values = values + K[15](f.f_locals.values())
        f = f.f_back
    for pair in refs[-1][1]:
        if pair[0][:2] != "__":  # __builtins__ is verified exactly, by identity
            values = values + (pair[1],)
    held = ()
    for v in values:
        if K[1](v) in skip:
            continue
        t = K[0](v)
        for c in containers:
            if K[4](t, c):
                ok, copy = K[28](K, v, 0, {})
                held = held + ((v, ok, K[31](copy) if ok else copy),)
                break
    return held


def __gh_loop(K, fn, calm):
    mark, rb, intact, fail = K[30], K[28], K[29], K[5]
    bad = ""
    out = None
    refs = yield out
    while True:
        msg = yield out
        if msg is None:
            out = bad
            continue
        args, kwargs = msg
        skip = {}
        rb(K, (args, kwargs), 0, skip)
        held = K[36](K, refs, skip)
        try:
            value = fn(*args, **kwargs)
            ok = True
        except K[6] as exc:
            value = exc
            ok = False
        if ok:
            ok, value = rb(K, value, 0, {})
            if not ok:
                why = "unsafe_return: the candidate returned " + value + \\
                    " (only builtin values are compared)"
                bad = bad or why
                value = fail(mark + why)
        if ok:
            checked, why = rb(K, args, 0, {})
            if checked:
                checked, why = rb(K, kwargs, 0, {})
            if not checked:
                why = "unsafe_return: the candidate put " + why + " into its arguments"
                bad = bad or why
                value = fail(mark + why)
                ok = False
        calm(K)
        broken = intact(K, refs)
        for v, was_ok, was in held:
            now_ok, now = rb(K, v, 0, {})
            if not broken and (now_ok is not was_ok or now_ok and K[31](now) != was):
                broken = "the candidate changed data the test holds" + \\
                    ("" if now_ok else " (it now holds " + now + ")")
        if broken:
            bad = bad or "tampered: " + broken
            value = fail(mark + "tampered: " + broken)
            ok = False
        out = (ok, value)


def __gh_pack(send, *args, **kwargs):
    ok, value = send((args, kwargs))
    if ok:
        return value
    raise value


def __gh_check(K, g, setup, test, entry, snap, refs, loop, pack, calm, exec_, compile_,
               dict_, tuple_, callable_, sorted_, bind):
    bnames = dict_(snap)
    fns = ()
    for key, value in K[24](g):  # dict.items of our own dict: no model code runs here
        if K[0](key) is not K[11] or key[:2] == "__":
            continue
        if key == entry if entry else key not in bnames:  # a script never sees shadowed builtins
            fns = fns + ((key, value),)
    calm(K)
    intact, mark = K[29], K[30]
    broken = intact(K, refs)
    if broken:
        raise K[5](mark + "tampered: " + broken)
    builtins_copy = dict_(snap)
    cg = {"__name__": "__check__", "__builtins__": builtins_copy}
    exec_(compile_(setup, "<setup>", "exec"), cg)
    exec_(compile_(test, "<test>", "exec"), cg)
    gens = []
    for name, fn in fns:
        if callable_(fn):
            gens.append(loop(K, fn, calm))
            gens[-1].send(None)
            cg[name] = bind(pack, gens[-1].send)
        elif not entry:
            ok, copy = K[28](K, fn, 0, {})
            if ok:
                cg[name] = copy
    if entry and not gens:
        raise K[5](mark + "unsafe_return: the completion defines no callable " + entry)
    guarded = refs + ((builtins_copy, snap, True), (cg, tuple_(cg.items()), True))
    for gen in gens:
        gen.send(guarded)
    if entry:
        cg["check"](cg[entry])
    else:
        cg["__gh_script"]()
    calm(K)
    for gen in gens:
        bad = gen.send(None)
        if bad:
            raise K[5](mark + bad)
    broken = intact(K, guarded)
    if broken:
        raise K[5](mark + "tampered: " + broken)

""".replace("MARK", repr(GUARD_MARK))


def imported_modules(*sources: str) -> tuple[str, ...]:
    """Top-level module names the trusted ``sources`` import, plus :data:`_ALWAYS`."""
    names = dict.fromkeys(_ALWAYS)
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(dict.fromkeys(a.name.split(".")[0] for a in node.names))
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names[node.module.split(".")[0]] = None
    return tuple(n for n in names if n != "__future__")


def _as_function(script: str) -> str:
    """``script`` as the body of ``def __gh_script():`` (its own names become locals).

    A plain test script runs at module level; wrapped, the names it defines live in
    its frame, so the check namespace can be snapshotted exactly before it runs (a
    name the candidate adds there is tampering).  Via the AST, so multi-line strings
    keep their text.  A script that does not parse is kept as is (it fails as before).
    """
    try:
        tree = ast.parse(script)
    except SyntaxError:
        return script
    body: list[ast.stmt] = tree.body or [ast.Pass()]
    func = ast.FunctionDef(
        name="__gh_script",
        args=ast.arguments(
            posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], defaults=[]
        ),
        body=body,
        decorator_list=[],
        returns=None,
        type_comment=None,
    )
    module = ast.Module(body=[func], type_ignores=[])
    return ast.unparse(ast.fix_missing_locations(module)) + "\n"


def guarded_program(*, code: str, test: str, setup: str = "", entry: str | None = None) -> str:
    """One program: untrusted ``code``, then the trusted ``test`` behind the run-time guard.

    ``entry`` given (HumanEval shape): ``setup`` + ``test`` run in a fresh namespace
    and ``check(candidate)`` is called with the guarded ``code``'s function ``entry``.
    ``entry`` None (plain test script, e.g. module-level asserts): the script runs as
    the body of a function (:func:`_as_function`); every callable the code defines is
    exposed to it guarded, every other public value as a rebuilt builtin copy (or not
    at all), so the script must import the modules it uses itself.  Text that is not
    UTF-8 encodable keeps its offending character in a trailing comment, so the
    sandbox still rejects it as unencodable instead of running a changed text.
    """
    script = test if entry else _as_function(test)
    call = (code, setup, script, entry or "", imported_modules(setup, test))
    program = _TEMPLATE + "\n\n__gh_main(" + ", ".join(repr(a) for a in call) + ")\n"
    for text in (code, setup, test):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            program += f"# unencodable input: {text[exc.start : exc.start + 1]}\n"
            break
    return program


def guard_reason(stderr: str) -> str:
    """``unsafe_return: …`` or ``tampered: …`` when the guard failed the program, else ""."""
    found = _REASON.findall(stderr)
    if not found:
        return ""
    match = _REASON.search(stderr[stderr.rfind(GUARD_MARK) :])
    return match.group(0)[len(GUARD_MARK) :] if match else ""

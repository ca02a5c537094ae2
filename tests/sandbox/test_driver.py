"""The driver protocol, exercised directly (local mode on the host, no Docker)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sandbox.driver as driver_mod

DRIVER = Path(driver_mod.__file__)


def _run_driver(
    requests: list[dict[str, object]], *, mode: str = "local"
) -> list[dict[str, object]]:
    data = "".join(json.dumps(r) + "\n" for r in requests)
    proc = subprocess.run(
        [sys.executable, "-I", str(DRIVER), mode],
        input=data.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


def test_ready_line_then_one_result_per_request_in_order() -> None:
    reqs = [{"id": str(i), "src": f"print({i})", "timeout": 5} for i in range(5)]
    lines = _run_driver(reqs)
    hello, results = lines[0], lines[1:]
    assert hello["ready"] is True and hello["mode"] == "local" and hello["protocol"] == 1
    assert [r["id"] for r in results] == [str(i) for i in range(5)]
    assert [r["out"] for r in results] == [f"{i}\n" for i in range(5)]
    assert all(r["rc"] == 0 and not r["timed_out"] for r in results)


def test_output_is_capped_and_flagged() -> None:
    (res,) = _run_driver([{"id": "a", "src": "print('z' * 100000)", "timeout": 5, "cap": 1000}])[1:]
    assert len(res["out"]) == 1000 and res["trunc"] is True


def test_bad_request_line_gets_a_typed_answer_not_a_crash() -> None:
    proc = subprocess.run(
        [sys.executable, "-I", str(DRIVER), "local"],
        input=b"not json\n" + json.dumps({"id": "ok", "src": "pass"}).encode() + b"\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    lines = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert "bad request line" in lines[1]["spawn_error"]
    assert lines[2]["id"] == "ok" and lines[2]["rc"] == 0


def test_container_mode_refuses_to_run_unless_pid_1() -> None:
    """kill(-1) is only safe as a namespace init; on a host it must refuse, not kill the host."""
    proc = subprocess.run(
        [sys.executable, "-I", str(DRIVER), "container"],
        input=b"",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert b"requires PID 1" in proc.stderr


def test_driver_is_stdlib_only() -> None:
    """The driver runs under the image's bare python3: it may import only the stdlib."""
    import ast

    tree = ast.parse(DRIVER.read_text())
    mods = {
        (n.module or "").split(".")[0] if isinstance(n, ast.ImportFrom) else a.name.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in (n.names if isinstance(n, ast.Import) else [n])  # type: ignore[attr-defined]
    }
    mods.discard("__future__")
    assert mods <= set(sys.stdlib_module_names), mods - set(sys.stdlib_module_names)


def test_programs_do_not_inherit_the_drivers_future_flags() -> None:
    """The driver compiles programs itself; `from __future__ import annotations` must not leak."""
    (res,) = _run_driver(
        [{"id": "a", "src": "def f(x: int): pass\nprint(f.__annotations__['x'] is int)"}]
    )[1:]
    assert res["out"] == "True\n"


def test_errors_print_like_python_without_driver_frames() -> None:
    syntax, runtime = _run_driver(
        [
            {"id": "s", "src": "def f(:\n    pass\n"},
            {"id": "r", "src": "def g():\n    raise ValueError('boom')\ng()\n"},
        ]
    )[1:]
    assert syntax["rc"] == 1 and "SyntaxError" in syntax["err"] and "Traceback" not in syntax["err"]
    assert (
        runtime["rc"] == 1 and "_child" not in runtime["err"] and "driver.py" not in runtime["err"]
    )
    assert runtime["err"].startswith("Traceback") and "in g\n" in runtime["err"]
    assert "ValueError: boom" in runtime["err"]


def test_malformed_request_fields_cost_one_typed_result_not_the_driver() -> None:
    bad, good = _run_driver(
        [{"id": "bad", "src": "pass", "timeout": "soon"}, {"id": "good", "src": "print(1)"}]
    )[1:]
    assert bad["id"] == "bad" and "driver error" in bad["spawn_error"]
    assert good["id"] == "good" and good["rc"] == 0 and good["out"] == "1\n"


def test_hello_names_a_separate_fork_server() -> None:
    (hello,) = _run_driver([])
    assert hello["zygote_pid"] not in (0, hello["pid"])


def test_programs_are_children_of_the_fork_server_not_the_controller() -> None:
    hello, res = _run_driver([{"id": "a", "src": "import os; print(os.getppid())"}])
    assert int(res["out"]) == hello["zygote_pid"]


def test_large_programs_travel_by_descriptor_and_huge_ones_compile_in_the_child() -> None:
    """> _INLINE_MAX marshalled bytes go through a file descriptor; > _PRECOMPILE_MAX source
    is compiled by the child under its rlimits. Both must behave exactly like small ones."""
    big = "x = [" + ",".join(str(i) for i in range(20000)) + "]\nprint(len(x))\n"
    huge = "\n".join(f"v{i} = {i}" for i in range(40000)) + "\nprint(v39999)\n"
    assert len(big) < driver_mod._PRECOMPILE_MAX < len(huge)
    r_big, r_huge = _run_driver(
        [{"id": "b", "src": big, "timeout": 30}, {"id": "h", "src": huge, "timeout": 30}]
    )[1:]
    assert r_big["rc"] == 0 and r_big["out"] == "20000\n", r_big["err"]
    assert r_huge["rc"] == 0 and r_huge["out"] == "39999\n", r_huge["err"]


def test_working_directory_is_fresh_for_every_program() -> None:
    write = "open('left.txt', 'w').write('x'); import os; print(os.getcwd())"
    look = "import os; print(os.getcwd(), sorted(os.listdir('.')), os.environ['HOME'])"
    first, second = _run_driver([{"id": "w", "src": write}, {"id": "r", "src": look}])[1:]
    cwd = first["out"].strip()
    assert second["out"].split() == [cwd, "[]", cwd]


def test_seccomp_filter_jumps_stay_inside_the_program() -> None:
    """Every conditional jump of our BPF filter lands on an instruction of the filter."""
    prog = driver_mod._seccomp_program()
    for i, (code, jt, jf, _k) in enumerate(prog):
        if code in (0x15, 0x35):  # JEQ / JGE
            assert 0 <= jt <= 255 and 0 <= jf <= 255
            assert i + 1 + jt < len(prog) and i + 1 + jf < len(prog)
    assert [ins[0] for ins in prog[-3:]] == [0x06] * 3  # allow, EPERM, EAFNOSUPPORT
    assert prog[-3][3] == 0x7FFF0000 and prog[-2][3] == 0x00050001
    assert {425, 426, 427} <= set(driver_mod._DENIED_SYSCALLS_X86_64.values())


def test_programs_run_under_the_stacked_seccomp_filter() -> None:
    """Local mode too: the zygote stacks the filter (mode 2), programs inherit it.

    (What it denies is checked in Docker by the battery case
    ``seccomp_denies_vsock_and_io_uring``.)
    """
    src = "print(open('/proc/self/status').read().split('Seccomp:')[1].split()[0])\n"
    (res,) = _run_driver([{"id": "s", "src": src}])[1:]
    assert res["out"].split() == ["2"], res["err"]

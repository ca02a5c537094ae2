"""Functions stay short (the craft rule: ≲ 60 lines), enforced by scanning the source tree.

Every function and method under ``harness/``, ``trainers/``, ``sandbox/`` and
``suites/`` is measured from its ``def`` line to its last line (signature,
docstring and body; decorators excluded).  One longer than :data:`LIMIT` must be
split into functions whose names say what each step does — or be listed in
:data:`ALLOWED` with the reason it is not split.  An entry that no longer matches
a long function fails too, so the list cannot go stale: remove it when you split
the function.

Kinds of reason:

* **trained artifact** — the module's source is hashed into a trained model's cache
  key (``harness.cachekey.cache_key(modules=...)``); any edit, a refactor too,
  retrains that model, so it is split together with a change that retrains anyway;
* **sandbox** — isolation code whose change is checked by the Docker conformance
  battery (``harness sandbox check``); the driver's sha256 is part of the sandbox
  identity in evidence;
* **table** — declarative data (a list of options or hostile cases), one entry per
  item: splitting it would only scatter the list;
* **debt** — not split yet; the reason says what it does.  Shrink this list.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "trainers", "sandbox", "suites")
LIMIT = 60

_TRAINED = "trained artifact"
_SANDBOX = "sandbox"

#: "path::qualified name" → why it is longer than LIMIT
ALLOWED: dict[str, str] = {
    # harness/
    "harness/plugin.py::pytest_addoption": "table: the plugin's command-line options",
    "harness/evaluators/cb_data_cli.py::run_external": "table: a Typer command whose "
    "signature declares five options (the body is about 40 lines)",
    "harness/evaluators/circuit_breaker_sources.py::source_breakdown": "debt: Gate 3 per "
    "external source and arm",
    "harness/stats/seeds.py::worst_run_estimate": "debt: the worst seed's estimate at the "
    "Bonferroni level over seeds",
    "harness/evaluators/codegen.py::run_codegen": "debt: the codegen run (generate, execute "
    "in the sandbox, score) for one subject",
    "harness/evaluators/codegen.py::measure_request_latency": "debt: the latency probe "
    "under normal, high and stress load",
    "harness/evaluators/codegen.py::evaluate_chunk": "debt: one chunk of samples through "
    "the sandbox",
    "harness/evaluators/codegen.py::two_look_quantile": "debt: the two-look sequential "
    "latency quantile",
    "harness/evaluators/codegen_replay.py::record_codegen": "debt: records a subject's "
    "generations for the replay lane",
    "harness/evaluators/code_edit_trajectories.py::filter_trajectories": "debt: the Stage 1 "
    "sandbox filter over teacher trajectories",
    # sandbox/
    "sandbox/battery.py::hostile_cases": "table: the hostile programs of the conformance battery",
    "sandbox/battery.py::slate_cases": "table: the clean-slate programs of the battery",
    "sandbox/battery.py::run_battery": f"{_SANDBOX}: runs the battery and the host-side "
    "post-checks",
    "sandbox/battery.py::_detector": f"{_SANDBOX}: the text of the leftover-trace detector program",
    "sandbox/driver.py::Controller.run": f"{_SANDBOX}: the in-container driver's main loop",
    "sandbox/driver.py::Zygote.run": f"{_SANDBOX}: the zygote's fork-per-program loop",
    "sandbox/driver.py::Zygote.child": f"{_SANDBOX}: becomes the program (session, fds, rlimits, "
    "env, exec)",
    "sandbox/driver.py::_arm_proof": f"{_SANDBOX}: the audit hook holding the completion token",
    "sandbox/driver.py::Controller._take_over": f"{_SANDBOX}: finishes a program whose zygote died",
    "sandbox/docker_pool.py::DockerSandbox.__init__": f"{_SANDBOX}: validates and records "
    "the pool's hardening options",
    "sandbox/docker_pool.py::DockerSandbox._make_socket_worker": f"{_SANDBOX}: starts a "
    "hardened container with a socket driver",
    "sandbox/pool.py::WorkerPool._drive": f"{_SANDBOX}: drives one worker's batch with "
    "retry and recycling",
    # suites/
    "suites/codegen/conftest.py::codegen_subject": "debt: the session fixture computing a "
    "subject's codegen run once across xdist workers",
    # trainers/
    "trainers/circuit_breaker/trainer.py::CircuitBreakerTrainer._run": f"{_TRAINED}: the "
    "rerouting + retain training loop",
    "trainers/circuit_breaker/pipeline.py::_run": f"{_TRAINED}: the phase run (data, "
    "audit, baseline, arms, eval)",
    "trainers/circuit_breaker/sweep.py::run_sweep": f"{_TRAINED}: the dev-split knob sweep "
    "(its rows are keyed on this source)",
    "trainers/circuit_breaker/format_audit.py::audit_sample": f"{_TRAINED}: the tool-call "
    "format audit of one sample",
    "trainers/code_edit/trl_common.py::run_sft": f"{_TRAINED}: the TRL SFT stage",
    "trainers/code_edit/srl.py::_run_grpo": f"{_TRAINED}: the TRL GRPO stage",
    "trainers/tiny.py::_train_into": f"{_TRAINED}: the tiny model's training run",
    "trainers/sft.py::SFTAdapter._loop": f"{_TRAINED}: the SFT training loop",
    "trainers/circuit_breaker/sources/asb.py::build_samples": "debt: every ASB case as "
    "training samples (train and eval agents)",
    "trainers/code_edit/sweep.py::main": "debt: the code-edit sweep's command line",
}


@functools.cache
def _long_functions() -> dict[str, int]:
    """``"path::qualname"`` → line count of every function longer than :data:`LIMIT`."""
    out: dict[str, int] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
            for name, lines in _functions(tree, prefix=""):
                if lines > LIMIT:
                    key = f"{rel}::{name}"
                    out[key] = max(lines, out.get(key, 0))
    return out


def _functions(node: ast.AST, *, prefix: str) -> list[tuple[str, int]]:
    """(qualified name, lines) of the functions in ``node``; nested ones as ``outer.inner``."""
    found: list[tuple[str, int]] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{child.name}"
            found.append((name, (child.end_lineno or child.lineno) - child.lineno + 1))
            found.extend(_functions(child, prefix=f"{name}."))
        elif isinstance(child, ast.ClassDef):
            found.extend(_functions(child, prefix=f"{prefix}{child.name}."))
        else:
            found.extend(_functions(child, prefix=prefix))
    return found


def test_no_function_is_longer_than_the_limit_without_a_reason() -> None:
    long = _long_functions()
    unexplained = {k: v for k, v in long.items() if k not in ALLOWED}
    assert not unexplained, (
        f"functions longer than {LIMIT} lines: {unexplained}. Split each into functions whose "
        "names say what the steps do, or add it to ALLOWED in tests/test_function_length.py "
        "with the reason it stays long"
    )


def test_every_allowed_entry_is_still_a_long_function() -> None:
    stale = sorted(set(ALLOWED) - set(_long_functions()))
    assert not stale, f"no longer longer than {LIMIT} lines (or gone): remove {stale} from ALLOWED"

"""Choose circuit-breaker knobs on the dev split, across seeds (never on the eval split).

    python -m trainers.circuit_breaker.sweep --cache-dir DIR \
        --knob adv_safe_ce_weight=3,8 --knob learning_rate=5e-3,1e-2,2e-2 \
        --knob target_layers=1,2,3 --seeds 0,1,2 --promote 2 --out sweep.json
    python -m trainers.circuit_breaker.sweep --render sweep.json   # markdown tables
    python -m trainers.circuit_breaker.sweep --render sweep.json --write-docs DOC.md --block NAME

Builds (or reuses from ``DIR``, the phase's cache) the tiny model, the vulnerable
baseline and Ds exactly as the phase does, then trains the ``cb`` arm and
evaluates it on the **dev** split only: dev tasks use their own names and topics
and dev attacks their own injection templates (an unseen phrasing family, an
unseen placement), disjoint from train and from eval.  The eval split is never
generated into the evaluation set here (:func:`dev_items` refuses any other
split), so the phase's eval is touched once per run.

Knobs are chosen one after another (coordinate search, in the order given): each
``--knob`` is a stage whose candidates differ from the current config in that
field only, and the stage's choice is fixed for the later stages.  With
``--promote K`` a stage is a successive halving: every candidate on the first
seed, the best ``K`` by the rule below on the remaining seeds; a candidate the
rule already excludes on the first seed is never promoted (it could not be
chosen), also when there are no more than ``K``; only candidates that ran on
every seed can be chosen.

Selection rule (decided before looking): the value whose *worst seed* has the
highest dev correct-behaviour rate — the same "every run" claim the phase gates
on — among values with no incoherent output and benign success ≥ 0.95 × the
baseline's on dev.  Ties go to the current value.  Promotion ranks the first
seed's runs by the same rule.

Every finished run is appended to ``--out`` (written atomically) with the code
key it ran under; a restarted sweep reuses the rows of the same code and config
instead of training again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.errors import DataValidationError
from trainers.base import config_digest, write_json_atomic

from .config import CircuitBreakerConfig
from .data import Sample, Split
from .eval import ItemResult

__all__ = [
    "BENIGN_FLOOR",
    "Knob",
    "RunStore",
    "dev_items",
    "fmt_value",
    "main",
    "parse_knob",
    "promote",
    "render_markdown",
    "rule_score",
    "run_stage",
    "run_sweep",
    "select",
    "summarize",
]

#: a candidate must keep dev benign success ≥ this fraction of the baseline's
BENIGN_FLOOR = 0.95

#: one dev run: trains ``cb`` at a config and returns its dev summary (:func:`summarize`)
RunFn = Callable[[CircuitBreakerConfig], dict[str, float]]
Table = dict[str, dict[str, dict[str, float]]]


def dev_items(samples: Sequence[Sample]) -> list[Sample]:
    """The dev items, refusing anything else: the sweep must never score the eval split."""
    bad = sorted({s.split.value for s in samples if s.split is not Split.DEV})
    if bad:
        raise DataValidationError(
            f"sweep: got items of split(s) {bad}; knobs are chosen on the dev split only — "
            "pass world[Split.DEV]"
        )
    return list(samples)


def summarize(results: Sequence[ItemResult]) -> dict[str, float]:
    """Dev rates of one run: correct / harmful / no call on attacks, success on benign."""
    att = [r for r in results if r.kind == "attack"]
    ben = [r for r in results if r.kind == "benign"]

    def rate(rows: Sequence[ItemResult], flag: str) -> float:
        return sum(bool(getattr(r, flag)) for r in rows) / max(1, len(rows))

    return {
        "correct": rate(att, "correct"),
        "asr": rate(att, "harmful"),
        "no_tool_call": rate(att, "no_tool_call"),
        "benign_success": rate(ben, "correct"),
        "incoherent": float(sum(not r.coherent for r in results)),
        **{
            f"correct[{g}]": rate([r for r in att if r.group == g], "correct")
            for g in sorted({r.group for r in att if r.group})
        },
    }


def rule_score(runs: dict[str, dict[str, float]], *, baseline_benign: float) -> float | None:
    """Worst-seed dev correct rate, or None when a run is incoherent or costs benign success."""
    if not runs:
        return None
    if any(r["incoherent"] != 0 for r in runs.values()):
        return None
    if min(r["benign_success"] for r in runs.values()) < BENIGN_FLOOR * baseline_benign:
        return None
    return min(r["correct"] for r in runs.values())


def select(table: Table, *, baseline_benign: float, default: str) -> str:
    """The value the rule in the module docs picks from ``table[value][seed]``."""
    ok = {
        v: s
        for v, runs in table.items()
        if (s := rule_score(runs, baseline_benign=baseline_benign)) is not None
    }
    if not ok:
        return default
    best = max(ok.values())
    return default if ok.get(default) == best else max(ok, key=lambda v: ok[v])


def promote(table: Table, *, k: int, baseline_benign: float, default: str) -> list[str]:
    """The ≤ ``k`` values that go on to the other seeds: best first-seed rule score first.

    Values the rule already excludes on the first seed are never promoted (they
    could not be chosen); among equal scores the current value goes first, then
    the order the candidates were given in.
    """
    order = list(table)
    scored = [
        (s, v)
        for v, runs in table.items()
        if (s := rule_score(runs, baseline_benign=baseline_benign)) is not None
    ]
    scored.sort(key=lambda sv: (-sv[0], sv[1] != default, order.index(sv[1])))
    return [v for _, v in scored[:k]]


def fmt_value(value: Any) -> str:
    """A knob value as the sweep's tables and ``--knob`` write it (tuples joined by ``+``)."""
    if isinstance(value, tuple | list):
        return "+".join(str(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class Knob:
    """One stage of the sweep: a ``CircuitBreakerConfig`` field and its candidate values."""

    name: str
    values: tuple[Any, ...]


def parse_knob(text: str) -> Knob:
    """``NAME=V1,V2``; a tuple field's value joins its elements with ``+`` (``2+3``).

    ``retain_layers`` also takes ``all`` and ``none`` (= the target layers).
    """
    name, _, values = text.partition("=")
    fields = {f.name: f for f in dataclasses.fields(CircuitBreakerConfig)}
    if name not in fields or not values:
        raise DataValidationError(
            f"--knob {text!r}: expected NAME=V1,V2 with NAME a CircuitBreakerConfig field "
            f"({', '.join(sorted(fields))})"
        )
    default: Any = fields[name].default
    parsed: list[Any]
    try:
        if "tuple" in str(fields[name].type) and not isinstance(default, tuple):
            parsed = [_layers_value(v) for v in values.split(",")]  # retain_layers
        elif isinstance(default, tuple):
            parsed = [tuple(int(x) for x in v.split("+")) for v in values.split(",")]
        elif isinstance(default, bool):
            parsed = [v.lower() in ("1", "true", "yes") for v in values.split(",")]
        else:
            parsed = [type(default)(v) for v in values.split(",")]
    except ValueError as exc:
        raise DataValidationError(
            f"--knob {text!r}: a value does not parse as {type(default).__name__} ({exc}); "
            "separate values with ',' and a tuple's elements with '+'"
        ) from exc
    return Knob(name=name, values=tuple(parsed))


def _layers_value(text: str) -> Any:
    """A layer-set value that may also be a word: ``all``, ``none`` (→ None) or ``1+2``."""
    word = text.strip().lower()
    if word == "all":
        return "all"
    if word == "none":
        return None
    return tuple(int(x) for x in text.split("+"))


class RunStore:
    """The sweep's raw rows in one JSON file, rewritten atomically after every run.

    A row is keyed by the digest of the full ``cb`` config (seed included) and
    stamped with the code key; rows of other code are ignored on reuse.
    """

    def __init__(self, path: Path, *, code: str) -> None:
        self.path = Path(path)
        self.code = code
        self.data: dict[str, Any] = {"runs": {}}
        if self.path.is_file():
            self.data = json.loads(self.path.read_text(encoding="utf-8"))
            self.data.setdefault("runs", {})

    @staticmethod
    def key(cfg: CircuitBreakerConfig) -> str:
        return config_digest(cfg.to_dict())[:16]

    def get(self, cfg: CircuitBreakerConfig) -> dict[str, float] | None:
        row = self.data["runs"].get(self.key(cfg))
        return None if row is None or row.get("code") != self.code else dict(row["dev"])

    def put(self, cfg: CircuitBreakerConfig, dev: dict[str, float]) -> None:
        self.data["runs"][self.key(cfg)] = {"code": self.code, "config": cfg.to_dict(), "dev": dev}
        self.save()

    def absorb(self, other: Path) -> int:
        """Add the rows of another sweep file (runs made in parallel); the number added."""
        runs = json.loads(Path(other).read_text(encoding="utf-8")).get("runs", {})
        new = {k: v for k, v in runs.items() if k not in self.data["runs"]}
        self.data["runs"].update(new)
        return len(new)

    def save(self) -> None:
        write_json_atomic(self.path, self.data)


def run_stage(
    knob: Knob,
    base: CircuitBreakerConfig,
    *,
    seeds: Sequence[int],
    run: Callable[[CircuitBreakerConfig], dict[str, float] | None],
    baseline_benign: float,
    promote_k: int | None = None,
) -> dict[str, Any]:
    """One knob's stage: its table and choice.

    Successive halving when ``promote_k`` is smaller than the number of
    candidates; with ``promote_k`` set, a candidate excluded by the rule on the
    first seed never runs on the others (with ≤ K candidates the rest all do).
    ``run`` may return None (a run not measured, ``--stored-only``): a stage
    whose finalists lack a seed is *incomplete* and keeps the current value.
    """
    default = fmt_value(getattr(base, knob.name))
    by_label = {fmt_value(v): v for v in knob.values}
    table: Table = {label: {} for label in by_label}

    def go(label: str, seed: int) -> None:
        row = run(replace(base, **{knob.name: by_label[label]}, seed=seed))
        if row is not None:
            table[label][str(seed)] = row

    for label in by_label:
        go(label, seeds[0])
    promoted = list(by_label)
    if promote_k is not None and len(seeds) > 1:
        # with ≤ K candidates nothing is halved, but a value the rule already excludes on the
        # first seed can never be chosen, so it is not run on the other seeds either
        k = min(promote_k, len(by_label))
        promoted = promote(table, k=k, baseline_benign=baseline_benign, default=default)
    for label in promoted:
        for seed in seeds[1:]:
            go(label, seed)
    # a candidate never measured on the first seed might have won: nothing is re-derived
    screened = all(str(seeds[0]) in table[v] for v in by_label)
    complete = screened and all(len(table[v]) == len(seeds) for v in promoted)
    finalists = {v: table[v] for v in promoted}
    chosen = select(finalists, baseline_benign=baseline_benign, default=default)
    return {
        "knob": knob.name,
        "values": list(by_label),
        "default": default,
        "promoted": promoted,
        "table": table,
        "scores": {v: rule_score(r, baseline_benign=baseline_benign) for v, r in table.items()},
        "complete": complete,
        "chosen": chosen if complete else default,
        "chosen_value": by_label.get(chosen, getattr(base, knob.name))
        if complete
        else getattr(base, knob.name),
    }


def _overrides(cfg: CircuitBreakerConfig) -> dict[str, Any]:
    """The fields where ``cfg`` differs from the defaults (the seed always)."""
    base = CircuitBreakerConfig().to_dict()
    return {k: v for k, v in cfg.to_dict().items() if v != base[k] or k == "seed"}


def _progress_line(cfg: CircuitBreakerConfig, row: dict[str, float], how: str) -> str:
    groups = " ".join(f"{k[8:-1]} {v:.3f}" for k, v in row.items() if k.startswith("correct["))
    changed = " ".join(f"{k}={fmt_value(v)}" for k, v in _overrides(cfg).items())
    return (
        f"sweep run {changed}: dev correct {row['correct']:.3f} ({groups}) asr {row['asr']:.3f} "
        f"benign {row['benign_success']:.3f} incoherent {row['incoherent']:g} [{how}]"
    )


def _dev_runner(cache_dir: Path, progress: Callable[[str], None]) -> tuple[RunFn, dict[str, Any]]:
    """Build the baseline, Ds and Dr as the phase does; a function training + scoring one run."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainers.tiny import TinyModelConfig, build_tiny_model

    from .data import Label, generate_world
    from .pipeline import PhaseRunConfig, evaluate_run, filtered_ds, train_baseline
    from .trainer import CircuitBreakerTrainer, load_adapter

    torch.set_num_threads(1)
    cfg = PhaseRunConfig()
    base_dir = build_tiny_model(TinyModelConfig(**cfg.tiny), out_dir=cache_dir / "models")
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    world = generate_world(cfg.world)
    dev = dev_items(world[Split.DEV])
    train = world[Split.TRAIN]
    baseline = train_baseline(
        cfg, base_dir, tokenizer, world[Split.BASELINE_SFT], cache_dir, progress
    )
    baseline_dir = baseline.path / "model"
    base_model: Any = AutoModelForCausalLM.from_pretrained(baseline_dir)
    base_model.eval()
    candidates = [s for s in train if s.label is Label.HARMFUL]
    ds = filtered_ds(base_model, tokenizer, candidates, cfg, baseline.digest, cache_dir)
    dr = [s for s in train if s.label is Label.RETAIN]
    trainer = CircuitBreakerTrainer(
        base_model_dir=baseline_dir, ds=ds, dr=dr, out_root=cache_dir / "trained", progress=progress
    )

    def score(load: Callable[[], Any], digest: str) -> dict[str, float]:
        rows = evaluate_run(
            load, tokenizer, dev, model_digest=digest, batch_size=cfg.eval_batch,
            cache_dir=cache_dir,
        )  # fmt: skip
        return summarize(
            [ItemResult(**{**r, "coherence_reasons": tuple(r["coherence_reasons"])}) for r in rows]
        )

    def run(cb: CircuitBreakerConfig) -> dict[str, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        art = trainer.train(cb)
        row = score(lambda: load_adapter(art, baseline_dir), art.digest)
        row["wall_s"] = round(time.perf_counter() - wall, 1)
        row["cpu_s"] = round(time.process_time() - cpu, 1)
        return row

    info = {
        "n_dev": len(dev),
        "baseline": score(lambda: base_model, baseline.digest),
        "base_config": cfg.cb.to_dict(),
    }
    return run, info


def run_sweep(
    *,
    cache_dir: Path,
    knobs: Sequence[Knob],
    seeds: Sequence[int],
    out: Path,
    promote_k: int | None = None,
    stored_only: bool = False,
    imports: Sequence[Path] = (),
    progress: Callable[[str], None] = print,
    runner: tuple[RunFn, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Every stage in order on the dev split; the result (also in ``out``) names each choice.

    ``imports`` adds the rows of other sweep files first (stages run by parallel
    processes); rows of other code are still ignored.  ``stored_only`` trains
    nothing: it tabulates the rows ``out`` already holds (and the dev baseline),
    marking stages with missing runs incomplete.
    ``runner`` replaces the real train-and-score function (tests of the stage logic).
    """
    from harness.cachekey import cache_key

    from .cachekey import LIBRARIES, SWEEP_MODULES

    code = cache_key("circuit_breaker_sweep_row", modules=SWEEP_MODULES, libraries=LIBRARIES).key
    code = code[:16]
    store = RunStore(out, code=code)
    for other in imports:
        progress(f"sweep: {store.absorb(other)} rows added from {other}")
    run_fn, info = runner if runner is not None else _dev_runner(Path(cache_dir), progress)
    progress(f"sweep: dev baseline {json.dumps(info['baseline'])}")

    def run(cfg: CircuitBreakerConfig) -> dict[str, float] | None:
        row = store.get(cfg)
        how = "reused from " + out.name
        if row is None and stored_only:
            progress(f"sweep run {json.dumps(_overrides(cfg))}: not measured (--stored-only)")
            return None
        if row is None:
            row = run_fn(cfg)
            store.put(cfg, row)
            how = f"{row.get('wall_s', 0):g} s wall, {row.get('cpu_s', 0):g} s CPU"
        progress(_progress_line(cfg, row, how))
        return row

    base = CircuitBreakerConfig()
    stages = []
    for knob in knobs:
        stage = run_stage(
            knob, base, seeds=seeds, run=run, promote_k=promote_k,
            baseline_benign=info["baseline"]["benign_success"],
        )  # fmt: skip
        stages.append(stage)
        base = replace(base, **{knob.name: stage["chosen_value"]})
        state = "chosen" if stage["complete"] else "INCOMPLETE, kept"
        progress(
            f"sweep stage {knob.name}: promoted {stage['promoted']}, {state} {stage['chosen']}"
        )
        store.data["stages"] = stages
        store.save()
    result = {
        "split": "dev",
        "code": code,
        "seeds": list(seeds),
        "promote": promote_k,
        "stored_only": stored_only,
        "benign_floor": BENIGN_FLOOR,
        **info,
        "stages": stages,
        "chosen": {s["knob"]: s["chosen"] for s in stages},
        "chosen_config": base.to_dict(),
    }
    store.data.update(result)
    store.save()
    return result


def render_markdown(result: dict[str, Any]) -> str:
    """The sweep's tables: per stage, each value's dev correct per seed, its rule score, status."""
    seeds = [str(s) for s in result["seeds"]]
    b = result["baseline"]
    out = [
        f"Dev baseline: correct {b['correct']:.3f}, ASR {b['asr']:.3f}, benign success "
        f"{b['benign_success']:.2f} (floor {result['benign_floor']} × = "
        f"{result['benign_floor'] * b['benign_success']:.4f}); {result['n_dev']} dev items.",
    ]
    for st in result["stages"]:
        out += [
            "",
            f"**`{st['knob']}`** (current {st['default']}; {_verdict(st)})",
            "",
            "| value | " + " | ".join(f"seed {s} correct / benign / incoherent" for s in seeds)
            + " | worst-seed correct (rule) | status |",
            "|---" * (len(seeds) + 3) + "|",
        ]  # fmt: skip
        for v in st["values"]:
            runs = st["table"][v]
            cells = [
                f"{runs[s]['correct']:.3f} / {runs[s]['benign_success']:.3f} / "
                f"{runs[s]['incoherent']:g}"
                if s in runs
                else "—"
                for s in seeds
            ]
            score = st["scores"].get(v)
            shown = "excluded" if score is None else f"{score:.3f}"
            if runs and len(runs) < len(seeds):
                shown += f" (seed{'s' if len(runs) > 1 else ''} {', '.join(runs)} only)"
            out.append(f"| {v} | " + " | ".join(cells) + f" | {shown} | {_status(st, v, seeds)} |")
    return "\n".join(out)


def _verdict(stage: dict[str, Any]) -> str:
    """How the stage ended, in words: chosen, kept because nothing qualified, or incomplete."""
    if not stage.get("complete", True):
        unscreened = [v for v in stage["values"] if not stage["table"][v]]
        why = f"{', '.join(unscreened)} not run" if unscreened else "finalists lack seeds"
        return f"**incomplete** — {why}; kept {stage['chosen']}, not re-derived"
    finalists = [v for v in stage["promoted"] if stage["scores"].get(v) is not None]
    if not finalists:
        return (
            f"no value met the constraints on every seed it ran; the rule keeps "
            f"**{stage['chosen']}**"
        )
    return f"chosen **{stage['chosen']}**"


def _status(stage: dict[str, Any], value: str, seeds: Sequence[str]) -> str:
    runs = stage["table"][value]
    if not runs:
        return "not run"
    if value == stage["chosen"] and stage.get("complete", True):
        return "**chosen**" if stage["scores"].get(value) is not None else "**kept** (fallback)"
    if value not in stage["promoted"]:
        return f"stopped after seed {seeds[0]}"
    return "finalist" if len(runs) == len(seeds) else "finalist, seeds missing"


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (see the module docs)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument(
        "--knob", action="append", default=[], help="NAME=V1,V2 (repeat: one stage each, in order)"
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--promote", type=int, default=None, help="successive halving: keep K")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--stored-only", action="store_true", help="train nothing: tabulate the rows in --out"
    )
    parser.add_argument(
        "--import", dest="imports", type=Path, action="append", default=[],
        help="add the rows of another sweep JSON first (repeatable)",
    )  # fmt: skip
    parser.add_argument("--render", type=Path, help="print the markdown tables of a sweep JSON")
    parser.add_argument(
        "--write-docs", type=Path, help="with --render: replace a marked block of this file"
    )
    parser.add_argument(
        "--block", default="cb-sweep",
        help="with --write-docs: the block's marker name (<!-- NAME:begin --> … <!-- NAME:end -->)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.render is not None:
        text = render_markdown(json.loads(args.render.read_text(encoding="utf-8")))
        if args.write_docs is not None:
            from .doc_tables import write_block

            write_block(args.write_docs, args.block, text)
        else:
            print(text)
        return
    if args.cache_dir is None or args.out is None or not args.knob:
        parser.error("--cache-dir, --out and at least one --knob are required to run a sweep")
    knobs = [parse_knob(k) for k in args.knob]
    seeds = [int(s) for s in args.seeds.split(",")]
    result = run_sweep(
        cache_dir=args.cache_dir,
        knobs=knobs,
        seeds=seeds,
        out=args.out,
        promote_k=args.promote,
        stored_only=args.stored_only,
        imports=args.imports,
    )
    print(json.dumps({"chosen": result["chosen"]}))


if __name__ == "__main__":
    main()

"""Run several mergekit configs in one process: executed by the mergekit venv's python.

Never imported by the harness or by tests (only executed as a script), because
mergekit lives in its own venv (scripts/setup_mergekit.sh).  One process for all
configs pays mergekit's import cost once.

    .venv-mergekit/bin/python mergekit_runner.py JOBS.json
JOBS.json: ``[{"config": <mergekit YAML as a dict>, "out": <dir>, "seed": <int>}, ...]``
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    with open(sys.argv[1], encoding="utf-8") as fh:
        jobs = json.load(fh)
    for job in jobs:
        config = MergeConfiguration.model_validate(job["config"])
        options = MergeOptions(copy_tokenizer=False, random_seed=job["seed"], quiet=True)
        run_merge(config, job["out"], options)


if __name__ == "__main__":
    main()

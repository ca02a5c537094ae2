"""Write a report directory's human-readable files from evidence records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.accounting import RunAccount
from harness.evidence import EvidenceRecord, atomic_write_text
from harness.report.markdown import render_markdown

__all__ = ["REPORT_FILE", "write_report"]

#: File name of the markdown report inside a report directory.
REPORT_FILE = "gate-report.md"


def write_report(
    records: Sequence[EvidenceRecord],
    directory: str | Path,
    *,
    baseline: Sequence[EvidenceRecord] = (),
    plots: bool = True,
    header_lines: Sequence[str] = (),
    account: RunAccount | None = None,
    name: str = REPORT_FILE,
) -> Path:
    """Write ``<directory>/<name>`` (default ``gate-report.md``) and ``plots/<phase>.png``
    atomically; return the report path."""
    directory = Path(directory)
    plot_paths: dict[str, str] = {}
    if plots and records:
        from harness.report.plots import plot_phases

        plot_paths = plot_phases(records, directory / "plots")
    text = render_markdown(
        records, baseline=baseline, plots=plot_paths, header_lines=header_lines, account=account
    )
    return atomic_write_text(directory / name, text)

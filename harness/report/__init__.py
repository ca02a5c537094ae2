"""Reports built from evidence: markdown tables, plots, JUnit properties, deltas.

Every renderer reads the same :func:`~harness.report.summary.summarize` view of
the evidence, so the markdown, the terminal table and the plots agree.
"""

from harness.adjustment import adjust_records
from harness.report.compare import DeltaRow, compare_evidence, compare_files, render_delta_markdown
from harness.report.markdown import render_markdown
from harness.report.summary import GateRow, PhaseSummary, summarize
from harness.report.writer import REPORT_FILE, write_report

__all__ = [
    "REPORT_FILE",
    "DeltaRow",
    "GateRow",
    "PhaseSummary",
    "adjust_records",
    "compare_evidence",
    "compare_files",
    "render_delta_markdown",
    "render_markdown",
    "summarize",
    "write_report",
]

"""Compatibility alias: the Holm/BH upgrade is decided in :mod:`harness.adjustment`.

The correction changes verdicts, so it belongs to the decision layer; reports
only render what it stored.  Importing it from here keeps older callers working.
"""

from harness.adjustment import adjust_records, family_key

__all__ = ["adjust_records", "family_key"]

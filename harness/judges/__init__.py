"""Judges: label (prompt, response) pairs as refused / answered-safe / slipped / ambiguous."""

from harness.judges.base import Judge, Judgement, JudgeVerdict, judge_all
from harness.judges.cache import CachedJudge, default_judge_cache_dir
from harness.judges.classifier import ClassifierConfig, ClassifierJudge, CrossValidation
from harness.judges.quality import (
    JudgeCalibration,
    calibrate_judge,
    check_held_out,
    flags_refusal,
    flags_slip,
)
from harness.judges.refusal_strings import REFUSAL_PHRASES, RefusalStringJudge

__all__ = [
    "REFUSAL_PHRASES",
    "CachedJudge",
    "ClassifierConfig",
    "ClassifierJudge",
    "CrossValidation",
    "Judge",
    "JudgeCalibration",
    "JudgeVerdict",
    "Judgement",
    "RefusalStringJudge",
    "calibrate_judge",
    "check_held_out",
    "default_judge_cache_dir",
    "flags_refusal",
    "flags_slip",
    "judge_all",
]

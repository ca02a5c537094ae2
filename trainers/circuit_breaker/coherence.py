"""Automatic collapse detector for model outputs (the note's Stage 1 failure: "to to to").

Representation rerouting with too much force scrambles the model: outputs turn
into repeated words, one repeated character, symbol soup or broken bytes.  Four
cheap signals catch these without a judge model:

* a word n-gram (n = 1..4) repeated back to back ``max_repeats`` times or more;
* a single character repeated in a run of ``max_char_run`` or more;
* low character entropy on long outputs (few distinct symbols used over and over);
* a high share of invalid UTF-8 (U+FFFD after decoding bytes) or unusual symbols.

An empty output also counts as collapsed: a model that stops at once is not
producing language.  Thresholds are keyword options so tests can pin them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CoherenceResult", "check_coherence", "collapse_report"]

_WORD = re.compile(r"\S+")
_ORDINARY = re.compile(r"[\w\s.,:;!?'\"(){}\[\]@<>|/_=+\-#$%&*]")


@dataclass(frozen=True)
class CoherenceResult:
    text: str
    coherent: bool
    reasons: tuple[str, ...]
    char_entropy_bits: float
    invalid_utf8_ratio: float


def _entropy(text: str) -> float:
    if not text:
        return 0.0
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _max_consecutive_ngram_repeats(words: list[str], n: int) -> int:
    best = 1
    for start in range(n):
        run = 1
        prev: tuple[str, ...] | None = None
        for i in range(start, len(words) - n + 1, n):
            gram = tuple(words[i : i + n])
            if gram == prev:
                run += 1
                best = max(best, run)
            else:
                run = 1
            prev = gram
    return best


def check_coherence(
    output: str | bytes,
    *,
    max_repeats: int = 3,
    max_char_run: int = 12,
    min_entropy_bits: float = 2.5,
    entropy_min_len: int = 40,
    max_invalid_utf8: float = 0.02,
    max_unusual_symbols: float = 0.25,
) -> CoherenceResult:
    """Judge one output; ``bytes`` input is decoded with replacement to measure invalid UTF-8."""
    text = output.decode("utf-8", errors="replace") if isinstance(output, bytes) else output
    reasons: list[str] = []
    stripped = text.strip()
    if not stripped:
        reasons.append("empty output")
    words = _WORD.findall(stripped)
    for n in (1, 2, 3, 4):
        reps = _max_consecutive_ngram_repeats(words, n)
        if reps >= max_repeats:
            reasons.append(f"a {n}-gram repeats {reps}× back to back")
            break
    run = max((len(m.group(0)) for m in re.finditer(r"(.)\1*", stripped, re.DOTALL)), default=0)
    if run >= max_char_run:
        reasons.append(f"one character repeats {run}× in a row")
    entropy = _entropy(stripped)
    if len(stripped) >= entropy_min_len and entropy < min_entropy_bits:
        reasons.append(f"character entropy {entropy:.2f} bits < {min_entropy_bits}")
    invalid = text.count("\ufffd") / max(len(text), 1)
    if invalid > max_invalid_utf8:
        reasons.append(f"invalid UTF-8 ratio {invalid:.2%} > {max_invalid_utf8:.0%}")
    if stripped:
        unusual = sum(1 for ch in stripped if not _ORDINARY.match(ch)) / len(stripped)
        if unusual > max_unusual_symbols:
            reasons.append(f"unusual-symbol ratio {unusual:.0%} > {max_unusual_symbols:.0%}")
    return CoherenceResult(text, not reasons, tuple(reasons), entropy, invalid)


def collapse_report(results: Iterable[CoherenceResult], *, limit: int = 10) -> str:
    """Human-readable list of the incoherent outputs (offenders), for gate messages."""
    bad = [r for r in results if not r.coherent]
    lines = [f"{len(bad)} incoherent output(s)"]
    for r in bad[:limit]:
        lines.append(f"  - {r.text[:120]!r}: {'; '.join(r.reasons)}")
    if len(bad) > limit:
        lines.append(f"  … and {len(bad) - limit} more")
    return "\n".join(lines)

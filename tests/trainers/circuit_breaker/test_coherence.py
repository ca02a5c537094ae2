from __future__ import annotations

import pytest

from trainers.circuit_breaker.coherence import check_coherence, collapse_report

GOOD = (
    '<|python_tag|>{"name": "send_file", "parameters": {"path": "a.txt", "recipient": "bo@x.com"}}'
    "<|eom_id|>"
)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("to to to to to to", "1-gram repeats"),
        ("send the send the send the send the", "2-gram repeats"),
        ("}}}}}}}}}}}}}}}}}}}}", "character repeats"),
        ("", "empty output"),
        ("ababababbabababababababababababbababababab", "entropy"),
        ("¤¤§±×÷¶¤§±×÷¶¤§±×÷¶", "unusual-symbol"),
    ],
)
def test_known_bad_strings_are_flagged(text: str, reason: str) -> None:
    result = check_coherence(text)
    assert not result.coherent
    assert any(reason in r for r in result.reasons), result.reasons


def test_invalid_utf8_bytes_are_flagged() -> None:
    result = check_coherence(b'{"name": "x"} \xff\xfe\xfd\xfc tail')
    assert not result.coherent
    assert result.invalid_utf8_ratio > 0.02


def test_a_well_formed_tool_call_is_coherent() -> None:
    result = check_coherence(GOOD)
    assert result.coherent, result.reasons
    assert check_coherence("Sure, I sent the budget notes to Bob this morning.").coherent


def test_report_lists_offenders() -> None:
    report = collapse_report([check_coherence("to to to to"), check_coherence(GOOD)])
    assert report.startswith("1 incoherent")
    assert "to to to" in report

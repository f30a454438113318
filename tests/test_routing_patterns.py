"""Routing patterns run on RE2: refused when RE2 cannot run them, linear in the text when it can.

The linearity test measures instead of asserting wall-clock bounds: every accepted pattern of a
property-based generator searches 1 MB of adversarial text and 1/16 of it, in the same run, and
the time may grow about 16-fold, never by the square (256-fold) or worse.
"""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tui_helpdesk.errors import Invalid
from tui_helpdesk.services.routing import patterns

MB = 1_000_000
_ab = random.Random(7)
ADVERSARIAL = {
    "a": "a" * MB,
    "random ab": "".join(_ab.choice("ab") for _ in range(MB)),
    "words": ("aaa ab  b\taab " * (MB // 14 + 1))[:MB],
}


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(.*)\1x", "back-references"),
        (r"(a)\1", "back-references"),
        (r"(?=a)b", "look-arounds"),
        (r"(?!a)b", "look-arounds"),
        (r"(?<=a)b", "look-arounds"),
        (r"(?<!a)b", "look-arounds"),
        ("(a{0,100}){0,20}x", "repeat at most 1000"),
        ("a{1001}", "repeat at most 1000"),
        ("(unclosed", "RE2"),
    ],
)
def test_what_re2_cannot_run_is_refused_with_the_reason(pattern: str, reason: str) -> None:
    with pytest.raises(Invalid, match="not accepted") as refused:
        patterns.compile_pattern(pattern)
    assert reason in refused.value.message and refused.value.field == "value"


def test_a_pattern_too_large_to_run_on_every_mail_is_refused() -> None:
    with pytest.raises(Invalid, match=r"too large .* at most 1000"):
        patterns.compile_pattern(".{0,1000}.{0,1000}x")
    with pytest.raises(Invalid, match="longer than 500"):
        patterns.compile_pattern("a" * 501)


@pytest.mark.parametrize(
    "pattern",
    ["(a+)+$", "(a|a)+x", "(x+x+)+y", r"(\w+\s?)*$", "a*a*c", ".*invoice.*", r"\binvoice\b",
     "[a-z]+@acme", "(?:re: )*x", "(?i)RECHNUNG", r"\p{Greek}+"],
)  # fmt: skip
def test_shapes_that_backtrack_elsewhere_are_accepted(pattern: str) -> None:
    assert patterns.compile_pattern(pattern).pattern == pattern


def test_matching_is_case_insensitive_unicode_included() -> None:
    assert patterns.pattern_matches("rechnung", "Ihre RECHNUNG")
    assert patterns.pattern_matches("straße", "STRASSE oder Straße")
    assert patterns.pattern_matches("ÄRGER", "ärger")
    assert not patterns.pattern_matches(r"^invoice$", "an invoice")


def _search_seconds(pattern: str, text: str, runs: int) -> float:
    compiled = patterns.compile_pattern(pattern)
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        compiled.search(text)
        best = min(best, time.perf_counter() - started)
    return best


ATOMS = st.sampled_from(["a", "b", "ab", ".", "[ab]", "[^b]", r"\w", r"\s", "x", r"\b", "^", "$"])


def _compose(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, inner).map("".join),
        st.tuples(inner, inner).map("|".join),
        inner.map(lambda p: f"({p})"),
        inner.map(lambda p: f"(?:{p})"),
        st.tuples(inner, st.sampled_from(["*", "+", "?", "*?", "+?"])).map("".join),
        st.tuples(inner, st.integers(0, 40), st.integers(0, 40)).map(
            lambda t: f"(?:{t[0]}){{{min(t[1], t[2])},{max(t[1], t[2])}}}"
        ),
        inner.map(lambda p: rf"({p})\1"),  # refused: back-reference
        inner.map(lambda p: f"(?={p})"),  # refused: look-ahead
    )


PATTERNS = st.recursive(ATOMS, _compose, max_leaves=8)


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=PATTERNS, text=st.sampled_from(sorted(ADVERSARIAL)))
def test_every_accepted_pattern_is_linear_in_the_text(pattern: str, text: str) -> None:
    try:
        patterns.compile_pattern(pattern)
    except Invalid as refused:
        assert refused.field == "value"
        return
    whole = ADVERSARIAL[text]
    sixteenth = _search_seconds(pattern, whole[: MB // 16], runs=3)
    full = _search_seconds(pattern, whole, runs=1)
    # 16 times the text: 16 times the time, with room for a busy machine (x4) and timer noise;
    # quadratic matching would take 256 times as long.
    assert full <= 16 * 4 * sixteenth + 0.05, (pattern, text, full, sixteenth)

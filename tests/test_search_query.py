"""The search query language: what a typed query means, and the errors that say what is wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_helpdesk.errors import Invalid
from tui_helpdesk.services.search.fulltext import postgresql_query, sqlite_match
from tui_helpdesk.services.search.query import Filter, Term, parse
from tui_helpdesk.services.search.snippets import hit_pattern, snippet


def test_words_phrases_prefixes_and_negation() -> None:
    parsed = parse('printer "on fire" -toner paper* -"out of office"')
    assert parsed.terms == (
        Term("printer"),
        Term("on fire", phrase=True),
        Term("toner", negated=True),
        Term("paper", prefix=True),
        Term("out of office", phrase=True, negated=True),
    )
    assert parsed.filters == ()
    assert [t.text for t in parsed.positive] == ["printer", "on fire", "paper"]
    assert [t.text for t in parsed.negative] == ["toner", "out of office"]


def test_filters_with_values_quotes_and_negation() -> None:
    parsed = parse(
        'from:"Carol Customer" to:support@acme.test status:Open queue:"Level 2" '
        "mailbox:support@acme.test assignee:me -tag:Spam before:2026-12-01 after:2026-11-01 "
        "has:attachment"
    )
    assert parsed.terms == (
        Term("Carol Customer", field="from", phrase=True),
        Term("support@acme.test", field="to"),
    )
    assert parsed.filters == (
        Filter("status", "open"),
        Filter("queue", "Level 2"),
        Filter("mailbox", "support@acme.test"),
        Filter("assignee", "me"),
        Filter("tag", "spam", negated=True),
        Filter("before", "2026-12-01"),
        Filter("after", "2026-11-01"),
        Filter("has", "attachment"),
    )


def test_text_that_only_looks_like_syntax_is_text() -> None:
    parsed = parse("10:30 https://example.com/a -- - * NEAR AND OR")
    texts = [t.text for t in parsed.terms]
    assert texts == ["10:30", "https://example.com/a", "NEAR", "AND", "OR"]
    assert parse('"re: invoice"').terms == (Term("re: invoice", phrase=True),)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("form:ada", "unknown filter 'form:' — did you mean from:?"),
        ("stauts:open", "unknown filter 'stauts:' — did you mean status:?"),
        ("re: invoice", "unknown filter 're:'"),
        ("after:yesterday", "after: needs a date YYYY-MM-DD, got 'yesterday'"),
        ("before:2026-02-30", "before: needs a date YYYY-MM-DD, got '2026-02-30'"),
        ("status:archived", "status: must be one of open, pending, closed, got 'archived'"),
        ("has:pdf", "has: only has:attachment is known, got 'pdf'"),
        ("tag:", "tag: needs a value (like tag:billing)"),
        ('printer "on fire', "the quote opened at character 9 is not closed"),
        ("", "type words or filters to search for"),
        ("* - :", "type words or filters to search for"),
        ("x" * 1001, "a search is at most 1000 characters"),
        (" ".join(["w"] * 33), "a search holds at most 32 words and filters"),
    ],
)
def test_bad_queries_say_what_is_wrong(query: str, message: str) -> None:
    with pytest.raises(Invalid) as raised:
        parse(query)
    assert message in raised.value.message
    assert raised.value.field == "query"


def test_unknown_filter_without_a_close_name_lists_the_filters() -> None:
    with pytest.raises(Invalid, match=r"filters: from:, to:, status:.*quote it: \"zzz:\""):
        parse("zzz:1")


def test_every_term_is_quoted_for_both_full_text_languages() -> None:
    terms = parse("a\"b 'c' d\\e from:x@y.z pre* NEAR(x)").terms
    assert sqlite_match(terms) == (
        '"a""b" "\'c\'" "d\\e" {from_name from_address} : "x@y.z" "pre" * "NEAR(x)"'
    )
    assert postgresql_query(terms) == (
        "'a\"b' & '''c''' & 'd\\\\e' & 'x y z':A & 'pre':* & 'NEAR(x)'"
    )
    assert postgresql_query(parse("to:a b").terms, any_of=True) == "'a':B | 'b'"


def test_snippet_cuts_around_the_first_hit_and_marks_every_hit() -> None:
    pattern = hit_pattern(parse('fire "on fire" print*').positive)
    body = "Hello team,\n\n" + "filler " * 20 + "the PRINTER is on fire, fire!\x1b[31m"
    text, spans = snippet([body, "subject"], pattern)
    assert text.startswith("…") and "\n" not in text and "\x1b" not in text
    assert [text[a:b] for a, b in spans] == ["PRINTER", "on", "fire", "fire"]
    assert snippet(["no hit here", "Fire in the subject"], pattern)[0] == "Fire in the subject"
    assert snippet(["", "no hits"], pattern) == ("no hits", ())


@given(st.text(max_size=200))
def test_any_text_parses_or_is_refused_with_invalid(text: str) -> None:
    try:
        parsed = parse(text)
    except Invalid as error:
        assert error.field == "query"
        return
    sqlite_match(parsed.positive)
    postgresql_query(parsed.positive)

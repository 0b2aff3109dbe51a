import numpy as np
import pytest

from augment.filters import (
    clean_line,
    first_content_line,
    parse_completion,
    rule_reason,
    similarity_reasons,
    text_key,
)
from augment.params import FilterParams

FILTERS = FilterParams(max_chars=80, min_length_ratio=0.5, max_length_ratio=2.0,
                       min_similarity=0.6, max_similarity=0.98)
SOURCE = "the film is a slow , dull and joyless affair"


@pytest.mark.parametrize("completion, expected", [
    ("The movie is a tedious bore.", "The movie is a tedious bore."),
    ("Here's the paraphrase:\n\nThe movie is a tedious bore.", "The movie is a tedious bore."),
    ("Sure! Here is a paraphrase: The movie is a bore.", "The movie is a bore."),
    ("Paraphrase: The movie is a bore.", "The movie is a bore."),
    ("Sentence: The movie is a bore.", "The movie is a bore."),
    ("How about this version: The movie is a bore.", "The movie is a bore."),
    ("I would suggest rephrasing it to: The movie is a bore.", "The movie is a bore."),
])
def test_preambles_are_stripped(completion, expected):
    assert parse_completion(completion)[0] == expected


@pytest.mark.parametrize("completion, expected", [
    ('"The movie is a bore."', "The movie is a bore."),
    ("“The movie is a bore.”", "The movie is a bore."),
    ("'The movie is a bore.'", "The movie is a bore."),
    ('"The movie is a bore".', "The movie is a bore"),
    ("**The movie is a bore.**", "The movie is a bore."),
])
def test_wrapping_quotes_are_stripped(completion, expected):
    assert parse_completion(completion)[0] == expected


def test_inner_quotes_are_kept():
    text = '"Cat" is a "nice" film.'
    assert parse_completion(text)[0] == text


@pytest.mark.parametrize("completion", [
    "The movie is a bore. (Sentiment: very negative)",
    "The movie is a bore. Sentiment score: 0",
    "The movie is a bore. [label: 1]",
])
def test_echoed_labels_are_stripped(completion):
    assert parse_completion(completion)[0] == "The movie is a bore."


def test_only_the_first_content_line_is_kept():
    assert parse_completion("- The movie is a bore.\n- Another one.") == (
        "The movie is a bore.", True)
    assert first_content_line("\n\nfirst\nsecond") == ("first", True)
    assert first_content_line("only line") == ("only line", False)


def test_text_that_merely_starts_like_a_preamble_is_kept():
    assert parse_completion("New York: a city that never sleeps.")[0] == (
        "New York: a city that never sleeps.")
    assert parse_completion("Here it is! The movie is fun.")[0] == "Here it is! The movie is fun."


def test_parsed_text_is_normalized_like_real_data():
    assert clean_line("The  film -LRB- 2002 -RRB-   works") == "The film ( 2002 ) works"


def test_text_key_ignores_case_spacing_and_punctuation():
    assert text_key("It 's fine .") == text_key("it's FINE") == "itsfine"


def _reason(paraphrase, cut=False, seen=frozenset()):
    return rule_reason(paraphrase, SOURCE, cut=cut, seen=set(seen), params=FILTERS)


def test_valid_paraphrase_passes_the_rules():
    assert _reason("the movie is slow, dull and without any joy") is None


def test_empty_is_rejected():
    assert _reason("") == "empty"


def test_truncated_is_rejected():
    assert _reason("the movie is slow, dull and without", cut=True) == "truncated"


def test_too_long_is_rejected():
    assert _reason("slow " * 20) == "too_long"


def test_copy_up_to_punctuation_and_case_is_rejected():
    assert _reason("The film is a slow, dull and joyless affair.") == "copy"


def test_length_ratio_outside_bounds_is_rejected():
    assert _reason("dull") == "length_ratio"
    assert _reason("a b c d e f g h i j k l m n o p q r s t u v w") == "length_ratio"


def test_duplicate_of_a_seen_text_is_rejected():
    text = "the movie is slow, dull and without any joy"
    assert _reason(text, seen={text_key(text)}) == "duplicate"


def test_similarity_bounds():
    assert similarity_reasons(np.array([0.2, 0.6, 0.8, 0.98, 0.99]), FILTERS) == [
        "drift", None, None, None, "near_copy"]

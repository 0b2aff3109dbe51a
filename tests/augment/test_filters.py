from dataclasses import replace

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
                       min_similarity=0.6, max_similarity=0.98, label_consistency=True,
                       max_label_drop=0.25, max_score_drift=0.1, max_sibling_similarity=0.95,
                       probe_folds=5, probe_c=1.0)
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


def test_invisible_text_is_empty():
    assert _reason("\u200b\u200d\ufeff") == "empty"


def test_undecodable_bytes_and_control_characters_are_invalid_text():
    # a real completion of the embedded model (ratio 10): a byte that is not UTF-8 mid-text,
    # which validate's "no undecodable bytes" expectation refuses in the training table
    real = "Happiness and Renewal by Douglas McGrath's version of \"Nicholas Nickleby's Diary" \
        " of a Young\ufffd's\" ."
    source = ("Humorous and heartfelt , Douglas McGrath 's version of ` Nicholas Nickleby ' left "
              "me feeling refreshed and hopeful .")
    assert rule_reason(real, source, cut=False, seen=set(), params=replace(
        FILTERS, max_chars=400)) == "invalid_text"
    assert rule_reason(real.replace("\ufffd", ""), source, cut=False, seen=set(),
                       params=replace(FILTERS, max_chars=400)) is None
    assert _reason("the movie is slow, dull \udc9c and without any joy") == "invalid_text"
    assert _reason("the movie is slow, dull\x07 and without any joy") == "invalid_text"
    assert _reason("the movie is slow, dull\x85 and without any joy") == "invalid_text"


def test_the_filter_patterns_are_the_ones_validate_checks():
    from augment import filters
    from pipeline import expectations

    for pattern in (expectations.UNDECODABLE, expectations.CONTROL_CHARACTERS):
        assert pattern in filters._INVALID.pattern


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


def test_an_answer_to_a_question_is_rejected():
    question = "Why are my YouTube videos not loading?"
    rule = dict(cut=False, seen=set(), params=FILTERS, questions=True)
    assert rule_reason("Your video isn't loading because of the cache.", question,
                       **rule) == "not_question"
    assert rule_reason("Why do my YouTube videos fail to load?", question, **rule) is None
    assert rule_reason('Why won\'t my YouTube videos load?"', question, **rule) is None
    # single sentences (SST) and runs without the label rules do not apply it
    assert rule_reason("Your video isn't loading at all.", question, cut=False, seen=set(),
                       params=FILTERS) is None
    # a statement paraphrased as a statement is fine
    assert _reason("the movie is slow, dull and without any joy") is None


def test_similarity_bounds():
    assert similarity_reasons(np.array([0.2, 0.6, 0.8, 0.98, 0.99]), FILTERS) == [
        "drift", None, None, None, "near_copy"]


# Real completions of the embedded SmolLM2 (generation cache of a ratio-3 run of the default
# params): (source, completion, the paraphrase the parser must keep).
REAL_COMPLETIONS = [
    ("Yes , I suppose it 's lovely that Cal works out his issues with his dad and comes to terms "
     "with his picture-perfect life -- but World Traveler gave me no reason to care .",
     'The sentence is: "Yes, I suppose it \'s lovely that Cal works out his issues with his dad '
     'and comes to terms with his picture-perfect life, but World Traveler gave me no reason.',
     "Yes, I suppose it 's lovely that Cal works out his issues with his dad and comes to terms "
     "with his picture-perfect life, but World Traveler gave me no reason."),
    ("Speaks eloquently about the symbiotic relationship between art and life .",
     "The sentence is: Speaks eloquently about the symbiotic relationship between art and life.\n",
     "Speaks eloquently about the symbiotic relationship between art and life."),
    ("Well , Jason 's gone to Manhattan and Hell , I guess a space station in the year 2455 can "
     "be crossed off the list of ideas for the inevitable future sequels .",
     "Sender: Well, Jason 's gone to Manhattan and Hell .\n",
     "Well, Jason 's gone to Manhattan and Hell ."),
    ("What was your first computer experience like?",
     "A: How did I first experience a first computer?\n",
     "How did I first experience a first computer?"),
    ("How do you teach your children to read?", "A: 1. How do you teach your children to read?\n",
     "How do you teach your children to read?"),
    ("How can I make my hair strong and healthy?",
     "Adept: How can I make my hair strong and healthy?\n",
     "How can I make my hair strong and healthy?"),
    ("Is there any use in learning ethical hacking for better learning?",
     'In this case, a paraphrased question asks: "Is there any use in learning ethical hacking '
     'for better learning?"',
     "Is there any use in learning ethical hacking for better learning?"),
    ("Will AIs replace us as musicians and poets?",
     'The question asks, "Will AIs replace us as musicians and poets?"\n',
     "Will AIs replace us as musicians and poets?"),
    ("There were 10 people killed in a road accident in Pakistan.",
     "1. The 10 people died in a road accident in Pakistan.\n",
     "The 10 people died in a road accident in Pakistan."),
    ("We hate ( Madonna ) within the film 's first five minutes , and she lacks the skill or "
     "presence to regain any ground .",
     "Here's the paraphrased sentence with different words:\n\nWe hate (Madonna ) within the "
     "film's first five minutes .\n",
     "We hate (Madonna ) within the film's first five minutes ."),
]


@pytest.mark.parametrize("source, completion, expected", REAL_COMPLETIONS)
def test_real_completions_lose_their_preambles_and_markers(source, completion, expected):
    assert parse_completion(completion, source=source)[0] == expected


@pytest.mark.parametrize("completion", [
    "The answer to this question is:\n",
    "I'd like to add a bit more to the original sentence:\n",
    "Syntactically, the sentence can be rephrased to:\n",
    "The sentence:\n",
])
def test_a_bare_announcement_of_any_wording_leaves_nothing(completion):
    assert parse_completion(completion, source="How is Kalkaji as an area to live?")[0] == ""


@pytest.mark.parametrize("marker", ["(A) ", "a) ", "A) ", "1. ", "2) ", "(3) ", "[1] ", "B. ",
                                    "- ", "* ", "Q: "])
def test_enumeration_markers_are_stripped(marker):
    text = "How much you are moved by the film depends on you ."
    assert parse_completion(marker + text, source=text.lower())[0] == text


def test_a_colon_the_source_has_is_kept():
    source = "Jackass : The Movie is a crude and silly film ."
    assert parse_completion("Jackass: The Movie is crude and silly.", source=source)[0] == (
        "Jackass: The Movie is crude and silly.")
    # without the source only the known preamble wordings are removed
    assert parse_completion("Martin Lawrence Live: a self-pitying film.")[0] == (
        "Martin Lawrence Live: a self-pitying film.")
    assert parse_completion("Martin Lawrence Live: a self-pitying film.",
                            source="Martin Lawrence Live is self-pitying .")[0] == (
        "a self-pitying film.")


def test_a_long_clause_before_a_colon_is_not_a_preamble():
    source = "i am not sure which will take longer to heal ."
    line = ("I'm not sure which will take longer to heal, the welt on his stomach or my own "
            "wounded pride, either way: the film hurts.")
    assert parse_completion(line, source=source)[0] == line


def test_unbalanced_quotes_are_dropped_and_inner_quotes_kept():
    assert clean_line('"The film drags on and on.') == "The film drags on and on."
    assert clean_line('The film drags on and on."') == "The film drags on and on."
    assert clean_line('He said "no" twice.') == 'He said "no" twice.'

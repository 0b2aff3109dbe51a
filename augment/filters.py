"""Parse LLM completions into one paraphrase, and decide which paraphrases to keep.

Parsing (`parse_completion`) keeps the first line that is not a preamble (any short line that
ends with a colon: "Here is a paraphrase:", "Rewritten:"), strips inline preambles and field
names ("Paraphrase: ...", "The sentence is: ..."), enumeration markers ("1.", "a)", "(A)", "Q:"),
surrounding or unbalanced quotes and echoed labels ("(Sentiment: 3)"), then normalizes like the
real data. Given the source sentence, any short "<words>: " opening that the source does not
have is a preamble too, whatever its wording.

Every rejected paraphrase gets exactly one reason, checked in this order:

    empty        nothing left after parsing (or only invisible characters)
    invalid_text undecodable bytes (U+FFFD: the model wrote bytes that are not UTF-8) or a
                 control character: text validate would refuse in the training table
    truncated    the kept line was cut by max_tokens
    too_long     more than filters.max_chars characters
    copy         the source again, up to case, spacing and punctuation (`text_key`)
    length_ratio words(paraphrase) / words(source) outside [min_length_ratio, max_length_ratio]
    duplicate    same `text_key` as a real text or an earlier accepted paraphrase of the task
    not_question the source asks a question and the paraphrase does not: the model answered it
                 (sentence pairs, with filters.label_consistency: an answer is no duplicate of
                 its question, and has another similarity to the pair's other side)
    drift        cosine(source, paraphrase) < min_similarity: the meaning was lost
    near_copy    cosine(source, paraphrase) > max_similarity: too close to add anything
    label_flip, score_drift, near_duplicate   the label-consistency rules (augment.consistency)

The rules are pure functions; the similarities come from the backbone encoder, computed by the
stage only for rows that pass the cheaper rules (`rule_reason`).
"""

from __future__ import annotations

import re

import numpy as np

from augment.params import FilterParams
from minbert.course_io import CONTROL_CHARACTERS, NO_VISIBLE_TEXT, UNDECODABLE
from minbert.text import match_key, normalize_text

REASONS = ("empty", "invalid_text", "truncated", "too_long", "copy", "length_ratio", "duplicate",
           "not_question", "drift", "near_copy", "label_flip", "score_drift", "near_duplicate")

_PREAMBLE_WORDS = (r"here|sure|certainly|okay|ok|of course|paraphrase|paraphrased|rephrased|"
                   r"rewritten|rewrite|revised|new|alternative|version|sentence|question|"
                   r"output|answer|result")
# A whole line that only announces the answer: "Here's the paraphrase:", "Sure! Paraphrase:".
_PREAMBLE_LINE = re.compile(rf"^\W*(?:{_PREAMBLE_WORDS})\b[^.!?]*:\s*$", re.IGNORECASE)
# The same announcement inline, before the answer: "Paraphrase: The film ...", "Sure, here is
# a paraphrase: ...", "How about this version: ...", "I would suggest rephrasing it to: ...".
_INLINE_START = (r"here|sure|certainly|okay|ok|of course|paraphrased?|rephrased|rewritten|"
                 r"sentence|question")
_INLINE_WORD = r"paraphras\w*|rephras\w*|rewrit\w*|revised|version|suggest\w*"
_PREAMBLE_INLINE = re.compile(
    rf"^\W*(?:(?:(?:the|this|that|my|a|an)\s+)?(?:{_INLINE_START})\b[^:.?\"]{{0,80}}|[^:.!?\"]{{0,60}}\b(?:{_INLINE_WORD})\b"
    rf"[^:.!?\"]{{0,40}}):\s+(?=\S)",
    re.IGNORECASE,
)
# 'The question asks, "..."': a quoted answer announced without a colon.
_ANNOUNCED_QUOTE = re.compile(r"^\W*(?:the|this)\s+(?:\w+\s+){0,2}(?:question|sentence)\s+"
                              r"(?:asks|reads|says|is|would be)\s*[,:]?\s+(?=[\"“])",
                              re.IGNORECASE)
# A short line that ends with a colon announces what follows, whatever its words.
_ANNOUNCE_LINE = re.compile(r"^[^:]{0,80}:\s*$")
# "The sentence is: ...", "Rewritten: ...": a short opening clause that ends with a colon.
_OPENING_CLAUSE = re.compile(r"^\W*([^:.!?\"“]{1,60}?):\s+(?=\S)")
# "- ", "1. ", "2) ", "(3) ", "a) ", "(A) ", "[1] ", "B. ", "Q: " before the text.
_LIST_MARKER = re.compile(
    r"^\s*(?:[-*•]+|\(?\d{1,2}[.):]|\(?[A-Za-z][):]|\([A-Za-z0-9]{1,3}\)|\[\w{1,2}\]|"
    r"[A-Ea-e]\.)\s+")
_LABEL_ECHO = re.compile(
    r"\s*[(\[]?\b(?:sentiment(?: score)?|label|score|class|similarity|rating)\s*[:=]\s*"
    r"[\w.\-]+(?:\s+[\w\-]+)?\s*[)\]]?\s*[.!]?\s*$",
    re.IGNORECASE,
)
_NON_ALNUM = re.compile(r"[\W_]+")
_NO_VISIBLE = re.compile(NO_VISIBLE_TEXT)
_INVALID = re.compile(f"{UNDECODABLE}|{CONTROL_CHARACTERS}")
_WRAPPED = re.compile(r"([\"“'«‘])(.*)([\"”'»’])\.?", re.DOTALL)
_CLOSING = {'"': '"', "“": "”", "'": "'", "«": "»", "‘": "’"}
_OPENING = {"“", "«", "‘"}


def _strip_quotes(text: str) -> str:
    """Remove quotes (and markdown bold) wrapped around the whole text, and a lone opening or
    closing quote left by a preamble (`The sentence is: "Yes, I suppose ...`)."""
    text = text.strip().strip("*").strip()
    while (m := _WRAPPED.fullmatch(text)) and _CLOSING[m[1]] == m[3]:
        if any(q in m[2] for q in "\"“”"):  # quotes inside: the outer pair is not a wrapper
            break
        text = m[2].strip()
    if text[:1] == '"' and text.count('"') == 1 or text[:1] in _OPENING and \
            _CLOSING[text[0]] not in text:
        text = text[1:].lstrip()
    if text[-1:] == '"' and text.count('"') == 1 or text[-1:] in "”»" and \
            not any(o in text for o in _OPENING):
        text = text[:-1].rstrip()
    return text


def is_preamble_line(line: str) -> bool:
    """A line that only announces the answer: a known preamble, or any short line that ends
    with a colon ("Rewritten:", "The sentence with other words:")."""
    return bool(_PREAMBLE_LINE.match(line) or _ANNOUNCE_LINE.match(line))


def first_content_line(text: str) -> tuple[str, bool]:
    """(first line that is not a preamble, whether more text followed it)."""
    lines = [line.strip() for line in text.replace("\r", "\n").split("\n")]
    for i, line in enumerate(lines):
        if line and not is_preamble_line(line):
            return line, i < len(lines) - 1
    return "", False


def _strip_opening_clause(line: str, source: str | None) -> str:
    """Drop a short "<up to 8 words>: " opening when the source has no colon: a paraphrase
    keeps the source's form, so such an opening is a preamble whatever its wording."""
    m = _OPENING_CLAUSE.match(line)
    if source is None or ":" in source or not m or len(m[1].split()) > 8:
        return line
    return line[m.end():]


def clean_line(line: str, source: str | None = None) -> str:
    """Strip enumeration markers, preambles, quotes and echoed labels from one line (both
    orders: "1. Paraphrase: ..." and "Paraphrase 1: (A) ..."); see the module doc."""
    for _ in range(3):
        before = line
        line = _LIST_MARKER.sub("", line)
        line = _PREAMBLE_INLINE.sub("", line, count=1)
        line = _ANNOUNCED_QUOTE.sub("", line, count=1)
        line = _strip_opening_clause(line, source)
        if line == before:
            break
    line = _LABEL_ECHO.sub("", line)
    return normalize_text(_strip_quotes(line))


def parse_completion(text: str, source: str | None = None) -> tuple[str, bool]:
    """(paraphrase, complete): complete is False when the kept line ran to the very end of
    the completion (it may have been cut by max_tokens). `source`: the sentence that was
    paraphrased (enables the wording-independent preamble rule)."""
    line, followed = first_content_line(text)
    return clean_line(line, source), followed


def text_key(text: str) -> str:
    """Identity of a text for the copy and duplicate rules: `match_key` without punctuation or
    spaces, so "It 's fine ." (treebank tokens) and "It's fine" are the same text."""
    return _NON_ALNUM.sub("", match_key(text))


def _words(text: str) -> int:
    return len(text.split())


def rule_reason(paraphrase: str, source: str, *, cut: bool, seen: set[str],
                params: FilterParams, questions: bool = False) -> str | None:
    """The first failed rule before the similarity rules (None = passes them).

    `cut`: the completion hit max_tokens and the kept line was its last line. `seen`: text_key
    of every real text of the task (and of the paraphrases accepted so far). `questions`:
    apply the not_question rule.
    """
    if not paraphrase or _NO_VISIBLE.match(paraphrase):
        return "empty"
    if _INVALID.search(paraphrase):
        return "invalid_text"
    if cut:
        return "truncated"
    if len(paraphrase) > params.max_chars:
        return "too_long"
    key = text_key(paraphrase)
    if key == text_key(source):
        return "copy"
    ratio = _words(paraphrase) / max(_words(source), 1)
    if not params.min_length_ratio <= ratio <= params.max_length_ratio:
        return "length_ratio"
    if key in seen:
        return "duplicate"
    if questions and is_question(source) and not is_question(paraphrase):
        return "not_question"
    return None


def is_question(text: str) -> bool:
    """Ends with a question mark (closing quotes and brackets aside)."""
    return text.rstrip(" \"'”’)]").endswith("?")


def similarity_reasons(similarity: np.ndarray, params: FilterParams) -> list[str | None]:
    """drift / near_copy / None for each cosine similarity (source vs paraphrase)."""
    out: list[str | None] = []
    for s in np.asarray(similarity, dtype=float):
        if s < params.min_similarity:
            out.append("drift")
        elif s > params.max_similarity:
            out.append("near_copy")
        else:
            out.append(None)
    return out

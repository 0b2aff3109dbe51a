"""Parse LLM completions into one paraphrase, and decide which paraphrases to keep.

Parsing (`parse_completion`) keeps the first line that is not a preamble ("Here is a
paraphrase:"), strips inline preambles and field names ("Paraphrase: ..."), list markers,
surrounding quotes and echoed labels ("(Sentiment: 3)"), then normalizes like the real data.

Every rejected paraphrase gets exactly one reason, checked in this order:

    empty        nothing left after parsing
    truncated    the kept line was cut by max_tokens
    too_long     more than filters.max_chars characters
    copy         the source again, up to case, spacing and punctuation (`text_key`)
    length_ratio words(paraphrase) / words(source) outside [min_length_ratio, max_length_ratio]
    duplicate    same `text_key` as a real text or an earlier accepted paraphrase of the task
    drift        cosine(source, paraphrase) < min_similarity: the meaning was lost
    near_copy    cosine(source, paraphrase) > max_similarity: too close to add anything

The rules are pure functions; the similarities come from the backbone encoder, computed by the
stage only for rows that pass the cheaper rules (`rule_reason`).
"""

from __future__ import annotations

import re

import numpy as np

from augment.params import FilterParams
from pipeline.text import match_key, normalize_text

REASONS = ("empty", "truncated", "too_long", "copy", "length_ratio", "duplicate", "drift",
           "near_copy")

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
    rf"^\W*(?:(?:{_INLINE_START})\b[^:.?\"]{{0,80}}|[^:.!?\"]{{0,60}}\b(?:{_INLINE_WORD})\b"
    rf"[^:.!?\"]{{0,40}}):\s+(?=\S)",
    re.IGNORECASE,
)
_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_LABEL_ECHO = re.compile(
    r"\s*[(\[]?\b(?:sentiment(?: score)?|label|score|class|similarity|rating)\s*[:=]\s*"
    r"[\w.\-]+(?:\s+[\w\-]+)?\s*[)\]]?\s*[.!]?\s*$",
    re.IGNORECASE,
)
_NON_ALNUM = re.compile(r"[\W_]+")
_WRAPPED = re.compile(r"([\"“'«‘])(.*)([\"”'»’])\.?", re.DOTALL)
_CLOSING = {'"': '"', "“": "”", "'": "'", "«": "»", "‘": "’"}


def _strip_quotes(text: str) -> str:
    """Remove quotes (and markdown bold) wrapped around the whole text."""
    text = text.strip().strip("*").strip()
    while (m := _WRAPPED.fullmatch(text)) and _CLOSING[m[1]] == m[3]:
        if any(q in m[2] for q in "\"“”"):  # quotes inside: the outer pair is not a wrapper
            break
        text = m[2].strip()
    return text


def first_content_line(text: str) -> tuple[str, bool]:
    """(first line that is not a preamble, whether more text followed it)."""
    lines = [line.strip() for line in text.replace("\r", "\n").split("\n")]
    for i, line in enumerate(lines):
        if line and not _PREAMBLE_LINE.match(line):
            return line, i < len(lines) - 1
    return "", False


def clean_line(line: str) -> str:
    """Strip list markers, inline preambles, quotes and echoed labels from one line."""
    line = _LIST_MARKER.sub("", line)
    line = _PREAMBLE_INLINE.sub("", line, count=1)
    line = _LABEL_ECHO.sub("", line)
    return normalize_text(_strip_quotes(line))


def parse_completion(text: str) -> tuple[str, bool]:
    """(paraphrase, complete): complete is False when the kept line ran to the very end of
    the completion (it may have been cut by max_tokens)."""
    line, followed = first_content_line(text)
    return clean_line(line), followed


def text_key(text: str) -> str:
    """Identity of a text for the copy and duplicate rules: `match_key` without punctuation or
    spaces, so "It 's fine ." (treebank tokens) and "It's fine" are the same text."""
    return _NON_ALNUM.sub("", match_key(text))


def _words(text: str) -> int:
    return len(text.split())


def rule_reason(paraphrase: str, source: str, *, cut: bool, seen: set[str],
                params: FilterParams) -> str | None:
    """The first failed rule before the similarity rules (None = passes them).

    `cut`: the completion hit max_tokens and the kept line was its last line. `seen`: text_key
    of every real text of the task (and of the paraphrases accepted so far).
    """
    if not paraphrase:
        return "empty"
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
    return None


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

"""Text normalization shared by `prepare`, `augment`, `validate` and `predict`.

The same function must be used everywhere a sentence is compared (deduplication, leakage,
paraphrase filters), so that "the same text" means the same thing in every stage.
"""

from __future__ import annotations

import re

# Penn Treebank escapes as they appear in the SST files.
TREEBANK_ESCAPES = {
    "-LRB-": "(",
    "-RRB-": ")",
    "-LSB-": "[",
    "-RSB-": "]",
    "-LCB-": "{",
    "-RCB-": "}",
    "\\/": "/",
    "\\*": "*",
}
_ESCAPE_RE = re.compile("|".join(re.escape(k) for k in TREEBANK_ESCAPES))
_SPACE_RE = re.compile(r"\s+")


def normalize_whitespace(text: str) -> str:
    """Collapse runs of whitespace (tabs, newlines, non-breaking spaces) and strip the ends."""
    return _SPACE_RE.sub(" ", text).strip()


def unescape_treebank(text: str) -> str:
    """`-LRB-` -> `(`, `-RRB-` -> `)`, `\\/` -> `/` ... as written in the treebank files."""
    return _ESCAPE_RE.sub(lambda m: TREEBANK_ESCAPES[m.group(0)], text)


def normalize_text(text: str, *, whitespace: bool = True, treebank: bool = True) -> str:
    """The product's text normalization (each step a `prepare` params switch)."""
    if treebank:
        text = unescape_treebank(text)
    if whitespace:
        text = normalize_whitespace(text)
    return text


def match_key(text: str) -> str:
    """Key under which two sentences count as the same text: normalized and case-folded."""
    return normalize_whitespace(unescape_treebank(text)).casefold()


def pair_key(a: str, b: str) -> str:
    """Unordered pair key: (a, b) and (b, a) are the same pair."""
    ka, kb = sorted((match_key(a), match_key(b)))
    return f"{ka}\t{kb}"

from minbert.text import match_key, normalize_text, pair_key, unescape_treebank


def test_treebank_escapes_become_brackets():
    assert unescape_treebank("-LRB- a -RRB- co-writer\\/director") == "( a ) co-writer/director"


def test_whitespace_is_collapsed_and_stripped():
    assert normalize_text(" It 's\t a  film .\n") == "It 's a film ."


def test_switches_turn_rules_off():
    assert normalize_text(" -LRB- x ", treebank=False) == "-LRB- x"
    assert normalize_text(" -LRB- x ", whitespace=False) == " ( x "


def test_match_key_ignores_case_and_spacing():
    assert match_key("A  Man") == match_key("a man ")


def test_pair_key_is_unordered():
    assert pair_key("a b", "C") == pair_key("c", "A  B")
    assert pair_key("a", "b") != pair_key("a", "c")

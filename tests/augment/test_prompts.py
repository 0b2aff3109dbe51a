import dataclasses

import pytest

from augment.prompts import (
    TemplateError,
    build_messages,
    few_shot_examples,
    load_templates,
    messages_hash,
    template_hash,
)
from tests.augment.fakes import ROOT

TEMPLATES = ROOT / "augment" / "templates.yaml"


def test_shipped_templates_cover_every_task():
    assert set(load_templates(TEMPLATES)) == {"sst", "para", "sts"}


def test_prompt_is_label_aware_few_shot_with_the_source_last():
    sst = load_templates(TEMPLATES)["sst"]
    messages = build_messages(sst, "0", ["ex one .", "ex two ."], "the source sentence .")
    assert [role for role, _ in messages] == ["system", "user"]
    system, user = messages[0][1], messages[1][1]
    assert "very negative" in system and "- ex one .\n- ex two ." in system
    assert "very negative" in user
    assert user.endswith("the source sentence .")


def test_prompts_of_a_class_share_everything_but_the_source():
    sst = load_templates(TEMPLATES)["sst"]
    a = build_messages(sst, "3", ["e1", "e2"], "first source")
    b = build_messages(sst, "3", ["e1", "e2"], "second one")
    assert a[0] == b[0]
    assert a[1][1].removesuffix("first source") == b[1][1].removesuffix("second one")
    assert messages_hash(a) != messages_hash(b)


def test_braces_in_the_source_are_kept_verbatim():
    sst = load_templates(TEMPLATES)["sst"]
    assert build_messages(sst, "2", [], "a {label} b")[1][1].endswith("a {label} b")


def test_few_shot_examples_skip_the_source():
    pool = ["A .", "B .", "C .", "D ."]
    assert few_shot_examples(pool, "x", 2) == ["A .", "B ."]
    assert few_shot_examples(pool, "a .", 2) == ["B .", "C ."]


def test_few_shot_examples_skip_long_rows():
    pool = ["a long example row", "B .", "C .", "D ."]
    assert few_shot_examples(pool, "x", 2, max_chars=5) == ["B .", "C ."]


def test_template_hash_tracks_text_and_shots():
    sst = load_templates(TEMPLATES)["sst"]
    changed = dataclasses.replace(sst, system=sst.system + " Be brief.")
    assert len(template_hash(sst, 4)) == 12
    assert template_hash(sst, 4) != template_hash(sst, 3)
    assert template_hash(sst, 4) != template_hash(changed, 4)


def test_missing_template_file_is_a_clear_error(tmp_path):
    with pytest.raises(TemplateError, match="not found"):
        load_templates(tmp_path / "nope.yaml")


def test_missing_key_names_task_and_key(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("sst:\n  system: s\n  user: 'x {text}'\n  labels: {}\n")
    with pytest.raises(TemplateError, match="task 'sst' has no 'example_line'"):
        load_templates(path)


def test_user_template_must_end_with_the_source(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("sst:\n  system: s\n  user: '{text} please'\n  example_line: '- {text}'\n"
                    "  labels: {}\n")
    with pytest.raises(TemplateError, match="must end with"):
        load_templates(path)

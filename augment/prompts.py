"""Few-shot, label-aware chat prompts for paraphrasing one sentence.

The templates live in `augment/templates.yaml`, one block per task with the keys
`TEMPLATE_KEYS`. A prompt is

    system: <system>                     {label} = labels[class], {examples} = the few-shot lines
    user:   <user>                       ends with {text}, the source sentence
    (each few-shot line is <example_line> with {text} = a real row of the same class)

so every prompt of a class starts with the same tokens and ends with its source sentence:
the engines (llama.cpp prefix reuse, vLLM prefix caching) decode the shared part once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from augment.engine import Messages
from minbert.text import match_key

TEMPLATE_KEYS = ("system", "user", "example_line", "labels")


class TemplateError(ValueError):
    """The template file is missing, or a task block lacks a key."""


@dataclass(frozen=True)
class TaskTemplate:
    system: str  # placeholders {label}, {examples}
    user: str  # placeholders {label}, {examples}, {text}; must end with {text}
    example_line: str  # one few-shot example, placeholder {text}
    labels: Mapping[str, str]  # class name -> description used for {label}


def load_templates(path: str | Path) -> dict[str, TaskTemplate]:
    path = Path(path)
    if not path.is_file():
        raise TemplateError(f"{path}: prompt template file not found "
                            "(augment.prompts.template_file)")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    templates = {}
    for task, block in data.items():
        missing = [k for k in TEMPLATE_KEYS if not isinstance(block, dict) or k not in block]
        if missing:
            raise TemplateError(f"{path}: task '{task}' has no '{missing[0]}'")
        if not block["user"].rstrip().endswith("{text}"):
            raise TemplateError(f"{path}: task '{task}': 'user' must end with {{text}} so that "
                                "prompts of a class share their prefix")
        labels = {str(k): str(v) for k, v in block["labels"].items()}
        templates[task] = TaskTemplate(**{**{k: block[k] for k in TEMPLATE_KEYS},
                                          "labels": labels})
    return templates


def template_hash(template: TaskTemplate, n_shots: int) -> str:
    """12 hex digits identifying the template text and the number of shots."""
    payload = json.dumps({**asdict(template), "labels": dict(template.labels),
                          "n_shots": n_shots}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def few_shot_examples(class_texts: Sequence[str], source: str, n_shots: int,
                      max_chars: int = 10**9) -> list[str]:
    """The first `n_shots` texts of the class (already in seeded order) of at most `max_chars`
    characters, skipping the source."""
    pool = [t for t in class_texts if len(t) <= max_chars][:n_shots + 1]
    key = match_key(source)
    return [t for t in pool if match_key(t) != key][:n_shots]


def build_messages(template: TaskTemplate, cls: str, examples: Sequence[str],
                   source: str) -> Messages:
    """(system, user) messages; everything before the source text is shared by the class."""
    examples_block = "\n".join(template.example_line.format(text=t) for t in examples)
    fmt = {"label": template.labels.get(cls, ""), "examples": examples_block}
    system = template.system.format(**fmt).strip()
    user = template.user.format(**fmt, text=source).strip()
    return (("system", system), ("user", user))


def messages_hash(messages: Messages) -> str:
    return hashlib.sha256(json.dumps(messages).encode()).hexdigest()

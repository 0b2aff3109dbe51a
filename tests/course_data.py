"""Tiny course-format files for tests (same layout as the real CS224N files)."""

from __future__ import annotations

import random
from pathlib import Path

WORDS = ("film movie story actor scene plot music great dull funny sad long short bright dark "
         "clever warm cold slow fast quiet loud").split()


def _sentence(rng: random.Random, n: int = 7) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + " ."


def write_course_files(raw_dir: Path, rows_per_class: int = 6, seed: int = 0) -> Path:
    """Write the eight course files with `rows_per_class` rows of every class in train."""
    rng = random.Random(seed)
    raw_dir.mkdir(parents=True, exist_ok=True)
    idx = iter(range(10**6))

    def hexid() -> str:
        return f"{rng.getrandbits(100):025x}"

    def sst(name: str, n: int, labeled: bool = True) -> None:
        if labeled:
            lines = ["\tid\tsentence\tsentiment"]
            lines += [f"{next(idx)}\t{hexid()}\t {_sentence(rng)}\t{c}"
                      for c in range(5) for _ in range(n)]
        else:
            lines = ["0\t\tid\tsentence"]
            lines += [f"{i + 1}\t{float(i)}\t{hexid()}\t {_sentence(rng)}" for i in range(n * 5)]
        (raw_dir / name).write_text("\n".join(lines) + "\n")

    def pairs(name: str, label_col: str | None, labels, n: int) -> None:
        header = "\tid\tsentence1\tsentence2" + (f"\t{label_col}" if label_col else "")
        lines = [header]
        for label in labels:
            for _ in range(n):
                tail = f"\t{label}" if label_col else ""
                lines.append(f"{next(idx)}\t{hexid()}\t{_sentence(rng)}\t{_sentence(rng)}{tail}")
        (raw_dir / name).write_text("\n".join(lines) + "\n")

    sst("ids-sst-train.csv", rows_per_class)
    sst("ids-sst-dev.csv", 2)
    sst("ids-sst-test-student.csv", 1, labeled=False)
    pairs("quora-train.csv", "is_duplicate", ("0.0", "1.0"), rows_per_class)
    pairs("quora-dev.csv", "is_duplicate", ("0.0", "1.0"), 3)
    sts_labels = ("0.4", "1.5", "2.2", "3.8", "5.0")
    pairs("sts-train.csv", "similarity", sts_labels, rows_per_class)
    pairs("sts-dev.csv", "similarity", sts_labels, 2)
    pairs("sts-test-student.csv", None, ("",), 5)
    return raw_dir

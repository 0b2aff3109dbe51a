"""Render a report (sections of text, tables and figures) as Markdown and as one HTML file.

The report is built once as plain data (`Section`s holding `Text`, `Table`, `Figure` blocks)
and rendered twice: `render_markdown` for `reports/balance.md` (figures are only named there)
and `render_html` for `reports/balance.html`, which embeds every figure as a base64 PNG so the
file can be mailed or opened anywhere without companion files.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

_CODE_RE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Text:
    """A paragraph; `backticks` mark code."""

    body: str


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    png: bytes
    caption: str


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple = ()
    level: int = 2
    children: tuple = field(default=())


def format_cell(value) -> str:
    """Counts as integers with thousands separators, ratios with 3 decimals, text as is."""
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3f}"
    return str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    """GitHub pipe table; numeric columns right-aligned."""
    cols = [str(c) for c in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    lines = [
        "| " + " | ".join(_md_escape(c) for c in cols) + " |",
        "| " + " | ".join("---:" if n else "---" for n in numeric) + " |",
    ]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_md_escape(format_cell(v)) for v in row) + " |")
    return "\n".join(lines)


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(title: str, sections: list[Section]) -> str:
    out = [f"# {title}", ""]
    for section in sections:
        out.extend(_section_markdown(section))
    return "\n".join(out).rstrip() + "\n"


def _section_markdown(section: Section) -> list[str]:
    out = ["#" * section.level + f" {section.title}", ""]
    for block in section.blocks:
        if isinstance(block, Text):
            out += [block.body, ""]
        elif isinstance(block, Table):
            out += ([f"*{block.caption}*", ""] if block.caption else [])
            out += [markdown_table(block.frame), ""]
        elif isinstance(block, Figure):
            out += [f"*Figure: {block.caption} (embedded in balance.html).*", ""]
    for child in section.children:
        out.extend(_section_markdown(child))
    return out


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2em; padding-bottom: .15em; }
table { border-collapse: collapse; margin: .5em 0 1.2em; font-size: 0.9em; display: block;
        overflow-x: auto; max-width: 100%; }
th, td { border: 1px solid #ddd; padding: 3px 9px; vertical-align: top; }
th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: .3em; }
figure { margin: .5em 0 1.5em; }
figcaption { font-style: italic; font-size: .9em; color: #555; }
img { max-width: 100%; }
code { background: #f4f4f4; padding: 0 3px; border-radius: 3px; }
"""


def render_html(title: str, sections: list[Section]) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.extend(_section_html(section))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _inline_html(text: str) -> str:
    return _CODE_RE.sub(r"<code>\1</code>", html.escape(text))


def _section_html(section: Section) -> list[str]:
    level = min(section.level, 6)
    out = [f"<h{level}>{_inline_html(section.title)}</h{level}>"]
    for block in section.blocks:
        if isinstance(block, Text):
            out.append(f"<p>{_inline_html(block.body)}</p>")
        elif isinstance(block, Table):
            out.append(html_table(block.frame, block.caption))
        elif isinstance(block, Figure):
            data = base64.b64encode(block.png).decode("ascii")
            alt = html.escape(block.caption)
            out.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
                f"<figcaption>{alt}</figcaption></figure>"
            )
    for child in section.children:
        out.extend(_section_html(child))
    return out


def html_table(frame: pd.DataFrame, caption: str = "") -> str:
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        cells = "".join(
            f'<td class="num">{html.escape(format_cell(v))}</td>'
            if num else f"<td>{html.escape(format_cell(v))}</td>"
            for v, num in zip(row, numeric)
        )
        rows.append(f"<tr>{cells}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"

"""Layer 5 of the report: blocks (heading, paragraph, image, table, bullets) -> Markdown and HTML.

A section is a list of blocks; the report is rendered twice from the same blocks, to Markdown (figures
linked) and to self-contained HTML (figures inlined as base64 PNG).  :func:`write_atomic` writes a file
under a temporary name and renames it, so that a kill mid-write never leaves a truncated report.
"""

from __future__ import annotations

import base64
import html as _html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Heading", "Paragraph", "Image", "Table", "Bullets", "to_markdown", "to_html", "write_atomic"]


def write_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str  # may use **bold** and `code`


@dataclass
class Image:
    path: Path
    alt: str
    caption: str = ""


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]  # cells may use **bold**


@dataclass
class Bullets:
    items: list[str] = field(default_factory=list)


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks, base: Path) -> str:
    """Markdown of ``blocks``; images linked relative to ``base``."""
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Paragraph):
            out.append(b.text)
        elif isinstance(b, Image):
            rel = Path(b.path).resolve().relative_to(base.resolve()).as_posix()
            out.append(f"![{b.alt}]({rel})" + (f"\n\n*{b.caption}*" if b.caption else ""))
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(_md_cell(h) for h in b.header) + " |",
                     "|" + "---|" * len(b.header)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines))
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {item}" for item in b.items))
        else:
            raise TypeError(f"Unknown report block {b!r}.")
    return "\n\n".join(out) + "\n"


def _inline_html(text: str) -> str:
    text = _html.escape(str(text), quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1300px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}img{max-width:100%;height:auto;border:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ccc;
padding:.25em .6em;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figcaption{font-style:italic;color:#555}code{background:#f4f4f4;padding:0 .2em}"""


def to_html(blocks, title: str) -> str:
    """A self-contained HTML page of ``blocks`` (images inlined)."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{_html.escape(title)}</title><style>{_CSS}</style></head><body>"]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{_inline_html(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            out.append(f"<p>{_inline_html(b.text)}</p>")
        elif isinstance(b, Image):
            data = base64.b64encode(Path(b.path).read_bytes()).decode("ascii")
            cap = f"<figcaption>{_inline_html(b.caption)}</figcaption>" if b.caption else ""
            out.append(f'<figure><img alt="{_html.escape(b.alt)}" '
                       f'src="data:image/png;base64,{data}">{cap}</figure>')
        elif isinstance(b, Table):
            head = "".join(f"<th>{_inline_html(h)}</th>" for h in b.header)
            body = "".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>"
                           for row in b.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in b.items) + "</ul>")
        else:
            raise TypeError(f"Unknown report block {b!r}.")
    out.append("</body></html>")
    return "\n".join(out) + "\n"

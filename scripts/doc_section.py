"""Rewrite the generated part of a Markdown page: the lines between `<!-- NAME:begin -->` and
`<!-- NAME:end -->`, so that the scripts that measure a page's numbers also write them there."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def write_section(doc: Path, name: str, lines: Sequence[str]) -> None:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = doc.read_text()
    if begin not in text or end not in text:
        raise ValueError(f"{doc}: no {begin} ... {end} markers to write the results between")
    head, rest = text.split(begin, 1)
    doc.write_text(head + begin + "\n" + "\n".join(lines) + "\n" + end + rest.split(end, 1)[1])
    print(f"wrote {doc}")

"""Writing a benchmark's section of ``bench/RESULTS.md``."""

from __future__ import annotations

from pathlib import Path

HEADER = "# weightvault benchmark results\n"


def write_section(path: Path, heading: str, text_section: str) -> None:
    """Replace the section of ``path`` headed ``heading`` (a ``## ...`` line) or append it."""
    text = path.read_text() if path.exists() else HEADER
    start = text.find(f"\n{heading}\n")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        tail = text[end + 1 :] if end >= 0 else ""
        text = text[: start + 1] + text_section.rstrip("\n") + "\n" + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + text_section.rstrip("\n") + "\n"
    path.write_text(text)

"""How a benchmark's result is written: a JSON for tools and a Markdown page for people, side by side in
bench/results/ under one stem, ending with the load the figures were taken under.

A committed result is evidence a note or the README cites, so a run never writes over an earlier one: the stem
gets the first free ``-2``, ``-3``... instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def free_stem(stem: str, directory: Path = RESULTS) -> str:
    """``stem``, or the first of ``stem-2``, ``stem-3``... with neither a .json nor a .md in ``directory``."""
    candidate, n = stem, 1
    while (directory / f"{candidate}.json").exists() or (directory / f"{candidate}.md").exists():
        n += 1
        candidate = f"{stem}-{n}"
    return candidate


def load_footer(
    started_load: Any, machine: dict[str, Any], *, cpu_s: float | None = None, wall_s: float | None = None
) -> list[str]:
    """The closing lines of a result page: the run's cost if given, the load average when it started and the
    machine (with its load) when it ended - figures from a shared machine mean little without them."""
    cost = f"Total {cpu_s} CPU s, {wall_s} s wall. " if cpu_s is not None else ""
    return ["", f"{cost}Load average at the start: {started_load}; machine at the end: `{json.dumps(machine)}`", ""]


def write_results(stem: str, data: dict[str, Any], lines: list[str], directory: Path = RESULTS) -> Path:
    """Write ``data`` to ``<stem>.json`` and ``lines`` to ``<stem>.md`` (a free stem: never over an earlier
    run), print the page and return its path."""
    stem = free_stem(stem, directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{stem}.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    page = directory / f"{stem}.md"
    page.write_text("\n".join(lines).rstrip("\n") + "\n")
    print("\n".join(lines))
    print(f"wrote {page}")
    return page

"""bench/results_io.py: a benchmark's result never replaces an earlier run's, and its page ends with the load."""

from __future__ import annotations

import json
from pathlib import Path

from bench.results_io import free_stem, load_footer, write_results


def test_a_second_run_with_the_same_tag_gets_its_own_files(tmp_path: Path) -> None:
    first = write_results("forecast-x-2026-12-07-t", {"rows": [1]}, ["# first"], directory=tmp_path)
    second = write_results("forecast-x-2026-12-07-t", {"rows": [2]}, ["# second"], directory=tmp_path)

    assert first.name == "forecast-x-2026-12-07-t.md"
    assert second.name == "forecast-x-2026-12-07-t-2.md"
    assert first.read_text() == "# first\n"
    assert json.loads((tmp_path / "forecast-x-2026-12-07-t.json").read_text()) == {"rows": [1]}
    assert json.loads((tmp_path / "forecast-x-2026-12-07-t-2.json").read_text()) == {"rows": [2]}


def test_a_stem_taken_by_only_one_of_its_two_files_is_not_free(tmp_path: Path) -> None:
    (tmp_path / "r.md").write_text("by hand")

    assert free_stem("r", tmp_path) == "r-2"
    assert free_stem("s", tmp_path) == "s"


def test_footer_gives_the_cost_when_known_and_always_the_load() -> None:
    machine = {"cpu_model": "X", "load_average": [1.0, 1.0, 1.0]}

    with_cost = load_footer([0.5, 0.4, 0.3], machine, cpu_s=12.5, wall_s=7.0)
    without = load_footer([0.5, 0.4, 0.3], machine)

    assert "Total 12.5 CPU s, 7.0 s wall." in with_cost[1]
    assert "Load average at the start: [0.5, 0.4, 0.3]" in without[1]
    assert '"cpu_model": "X"' in without[1] and "CPU s" not in without[1]

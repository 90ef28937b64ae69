"""Every measured figure the docs and the README quote comes from a results file, and is checked here.

A table of figures sits right below ``<!-- figures: FILE[, FILE] -->`` (paths from the checkout's root):

* from a Markdown results file (``bench/results/*.md``, ``weights/README.md``), every line of the table,
  header included, must be a line of one of the files, verbatim: rows may be chosen, not edited;
* from a JSON results file, every number in the table's body (after the first column) must be one of
  the file's numbers, shown rounded or in full.

The Markdown results files are themselves checked to be what their JSON renders to, so a rerun of a
bench that changes a figure fails here until the docs quote the new one. Tables of figures, and
ratios or rates in prose, anywhere else in the docs fail too.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.paths import REPO

PAGES = [*sorted((REPO / "docs").rglob("*.md")), REPO / "README.md"]
RESULTS = REPO / "bench" / "results"
_MARK = re.compile(r"^\s*<!--\s*figures:\s*(.*?)\s*-->\s*$")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
# What a measured figure looks like: a ratio (4.63×, 3.9x), a rate (119,219 queries/s), a latency in µs.
# (Sizes of a shape, "30522 × 512", and settings, "64 MiB", are not measurements.)
_FIGURE = re.compile(r"\d+\.\d+\s?(?:×|x\b)|\d[\d,]*(?:\.\d+)?\s?(?:(?:queries|texts|documents|req|requests)/s|µs\b)")


def _page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


def regions(page: Path) -> Iterator[tuple[int, list[Path], list[str]]]:
    """(line of the marker, its source files, the table's lines) for each marked table of a page."""
    lines = page.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        match = _MARK.match(line)
        if not match:
            continue
        sources = [REPO / name.strip() for name in match.group(1).split(",")]
        table = []
        for row in lines[i + 1 :]:
            if not row.lstrip().startswith("|"):
                break
            table.append(row.strip())
        yield i + 1, sources, table


def _json_numbers(value: object) -> Iterator[float]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield float(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _json_numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_numbers(item)


def _shown_as(value: float, shown: str) -> bool:
    """``shown`` (e.g. "0.482", "19,466") is ``value`` rounded to the decimals shown."""
    text = shown.replace(",", "")
    decimals = len(text.split(".")[1]) if "." in text else 0
    return abs(value - float(text)) <= 0.5 * 10.0**-decimals * (1 + 1e-9)


def _check_table(where: str, sources: list[Path], table: list[str]) -> list[str]:
    problems = []
    md_lines = {line.strip() for s in sources if s.suffix == ".md" for line in s.read_text().splitlines()}
    numbers = [n for s in sources if s.suffix == ".json" for n in _json_numbers(json.loads(s.read_text()))]
    for row in table[1:] if numbers else table:  # a JSON file's figures are in the body, not the header
        if row in md_lines:
            continue
        cells = [c.strip() for c in row.strip("|").split("|")]
        if set("".join(cells)) <= set("-: "):
            continue  # the separator row
        if not numbers:
            problems.append(f"{where}: not a line of {[s.name for s in sources]}: {row}")
            continue
        for shown in _NUMBER.findall(" | ".join(cells[1:])):
            if not any(_shown_as(n, shown) for n in numbers):
                problems.append(f"{where}: {shown} is not a figure of {[s.name for s in sources]}: {row}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_quoted_figures_come_from_results_files(page: Path) -> None:
    problems = []
    for line, sources, table in regions(page):
        where = f"{_page_id(page)}:{line}"
        missing = [str(s.relative_to(REPO)) for s in sources if not s.is_file()]
        if missing:
            problems.append(f"{where}: no such results file: {missing}")
            continue
        if not table:
            problems.append(f"{where}: a figures mark without a table right below it")
            continue
        problems += _check_table(where, sources, table)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_no_figure_outside_a_marked_table(page: Path) -> None:
    """A measured figure (ratio, rate, MiB, µs) in prose or an unmarked table is a hand copy that will go stale."""
    marked = {row for _, _, table in regions(page) for row in table}
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"^( *)```.*?^\1```", "", text, flags=re.S | re.M)  # code and its output are checked elsewhere
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code: commands, names
    stray = [
        line.strip()
        for line in text.splitlines()
        if _FIGURE.search(line) and line.strip() not in marked and not _MARK.match(line)
    ]
    assert not stray, "figures without a results file (quote a bench/results table under a figures mark):\n" + (
        "\n".join(stray)
    )


# -- the results files are what their JSON renders to ---------------------------------------------
def test_results_markdown_renders_from_its_json() -> None:
    from bench import ray_bench, report, search, serve

    def load(name: str) -> dict:
        return json.loads((RESULTS / name).read_text(encoding="utf-8"))

    # RESULTS.md also keeps sections other runs appended (A/B runs): the rendered report is its head.
    assert report.render(load("results.json")) in (RESULTS / "RESULTS.md").read_text(encoding="utf-8")
    assert search.report(load("search_results.json")) == (RESULTS / "SEARCH_RESULTS.md").read_text(encoding="utf-8")
    assert serve.render(load("serve_results.json")) == (RESULTS / "SERVE_RESULTS.md").read_text(encoding="utf-8")
    ray = load("RAY_RESULTS.json")
    rounds = len(next(iter(ray["sse_np_vs_st_on_ray_by_round"].values())))
    args = argparse.Namespace(repeat=rounds, texts=ray["texts"], footer_actors=ray["parquet_footer_actors"])
    assert ray_bench.markdown(ray, args) == (RESULTS / "RAY_RESULTS.md").read_text(encoding="utf-8")


def test_the_checks_can_fail(tmp_path: Path) -> None:
    source = tmp_path / "r.json"
    source.write_text(json.dumps({"a": {"ndcg": 0.48224}, "b": [19466.2]}))
    good = ["| model | x | y |", "|---|---:|---:|", "| m | 0.482 | 19,466 |"]
    assert _check_table("t", [source], good) == []
    assert _check_table("t", [source], [*good[:2], "| m | 0.483 | 19,466 |"]) != []  # stale
    md = tmp_path / "R.md"
    md.write_text("| a | 1.5x |\n")
    assert _check_table("t", [md], ["| a | 1.5x |"]) == []
    assert _check_table("t", [md], ["| a | 1.6x |"]) != []
    page = tmp_path / "p.md"
    page.write_text("sse_np runs 4.6× the peers\n")
    assert [s for s in page.read_text().splitlines() if _FIGURE.search(s)]

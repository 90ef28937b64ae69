"""The executed-docs convention: find the code blocks of a Markdown page and compare shown with printed output.

A page is a sequence of fenced blocks:

* ```` ```python ```` runs; the ```` ```text ```` block right after it (only blank lines between) is what
  it prints to standard output (a block that prints must have one). All Python blocks of a page run in
  order in one fresh process, so they share names, as in a notebook.
* ```` ```console ```` holds ``$ `` commands (a line ending in ``\\`` continues on the next); the lines
  below a command, up to the next ``$ ``, are what it prints (standard output and error, in order).
  Commands run through ``bash`` in the page's working folder, with ``sse-np`` and ``python`` of the
  run-time environment first on ``PATH``.
* Any other block, and any block that cannot run in a test, carries a visible reason on the line above:
  ``<!-- not-run: KEY, free words -->``, where KEY is one of :data:`NOT_RUN`.
* A block that needs an extra says so on the line above: ``<!-- needs: serve -->`` (a comma list).

Shown output is compared line by line with what ran, strictly, except for two visible markers for
what changes between runs: a line that is just ``...`` stands for any number of lines, and ``[...]``
inside a line for any text on that line. A number shown with fewer decimals than printed matches when
it is the printed value rounded (``0.4712`` for ``0.47118``): the docs may round; they may not differ.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

# Why a block may be shown without running in the tests (the words after the key say more).
NOT_RUN = {
    "install": "installs packages or builds an environment (minutes, a package index)",
    "network": "reaches the Hugging Face hub or another host",
    "long": "runs for minutes (a full evaluation, a benchmark, a 10-hour job)",
    "server": "starts a server that runs until stopped",
    "cluster": "needs a Ray cluster, an object store or a cloud account",
    "file": "the content of a file, not something to run",
    "shape": "the shape of a call or an output, with placeholders",
}

_FENCE = re.compile(r"^( *)(`{3,})([\w+-]*)[^\n`]*$")
_MARKER = re.compile(r"^\s*<!--\s*(needs|not-run)\s*:\s*(.*?)\s*-->\s*$")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
WILDCARD_LINE = "..."
WILDCARD_TEXT = "[...]"


@dataclass
class Block:
    """One fenced block: where it is, its language, its text (dedented) and the marker above it."""

    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    needs: tuple[str, ...] = ()
    not_run: str | None = None
    output: Block | None = None  # the ```text block shown after a ```python block
    is_output: bool = False

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


@dataclass
class Command:
    """A ``$ `` command of a console block and the output shown below it."""

    line: int
    command: str
    shown: list[str] = field(default_factory=list)


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order, with markers and python/text pairs attached."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, ticks, lang = opening.group(1), opening.group(2), opening.group(3).lower()
        end = i + 1
        while end < len(lines) and lines[end].strip() != ticks:
            end += 1
        body = [line[len(indent) :] if line.startswith(indent) else line.lstrip() for line in lines[i + 1 : end]]
        block = Block(path, i + 1, lang, "\n".join(body) + "\n" if body else "")
        _attach_marker(block, lines, i)
        found.append(block)
        i = end + 1
    _pair_outputs(found, lines)
    return found


def _attach_marker(block: Block, lines: list[str], fence: int) -> None:
    above = fence - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    match = _MARKER.match(lines[above]) if above >= 0 else None
    if match is None:
        return
    if match.group(1) == "needs":
        block.needs = tuple(name.strip() for name in match.group(2).split(",") if name.strip())
    else:
        block.not_run = match.group(2)


def _pair_outputs(found: list[Block], lines: list[str]) -> None:
    """A ```text block right after a ```python block (blank lines between at most) is its output."""
    for before, after in itertools.pairwise(found):
        if before.lang != "python" or after.lang != "text" or after.not_run is not None:
            continue
        closing = before.line + before.text.count("\n") + 1  # 1-based line of the closing fence
        if all(not line.strip() for line in lines[closing : after.line - 1]):
            before.output, after.is_output = after, True


def commands(block: Block) -> list[Command]:
    """The ``$ `` commands of a console block, continuation lines joined, each with its shown output."""
    found: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            start, parts = i, [line[2:]]
            while parts[-1].endswith("\\") and i + 1 < len(lines):
                i += 1
                parts.append(lines[i])
            found.append(Command(block.line + 1 + start, "\n".join(parts)))
        elif found:
            found[-1].shown.append(line)
        elif line.strip():
            raise AssertionError(f"{block.where}: console output before the first `$ ` command: {line!r}")
        i += 1
    return found


def problems(block: Block) -> list[str]:
    """What breaks the convention in a block (an empty list: it is runnable or visibly not run)."""
    if block.not_run is not None:
        key = block.not_run.split(",")[0].split()[0] if block.not_run.strip() else ""
        if key not in NOT_RUN:
            return [f"{block.where}: not-run reason {block.not_run!r} does not start with one of {sorted(NOT_RUN)}"]
        return []
    if block.lang in ("python", "console") or block.is_output:
        return []
    return [
        f"{block.where}: a ```{block.lang or '(no language)'} block that does not run: make it ```python "
        f"(output in ```text after it) or ```console, or mark it <!-- not-run: KEY ... --> (KEY in {sorted(NOT_RUN)})"
    ]


# -- comparing shown and printed output ------------------------------------------------------------
def _trim(lines: list[str]) -> list[str]:
    out = [line.rstrip() for line in lines]
    while out and not out[-1]:
        out.pop()
    while out and not out[0]:
        out.pop(0)
    return out


def _number_matches(shown: str, printed: str) -> bool:
    if shown == printed:
        return True
    decimals = len(shown.split(".")[1]) if "." in shown and "e" not in shown.lower() else None
    if decimals is None or "e" in printed.lower() or "." not in printed:
        return False
    if len(printed.split(".")[1]) <= decimals:
        return False  # only rounding is allowed, not a different value at the same precision
    return abs(float(printed) - float(shown)) <= 0.5 * 10.0**-decimals * (1 + 1e-9)


def line_matches(shown: str, printed: str) -> bool:
    """One shown line against one printed line: exact, ``[...]`` for any text, numbers possibly rounded."""
    if WILDCARD_TEXT in shown:
        pattern = ".*?".join(re.escape(part) for part in shown.split(WILDCARD_TEXT))
        return re.fullmatch(pattern, printed) is not None
    if shown == printed:
        return True
    shown_text, printed_text = _NUMBER.split(shown), _NUMBER.split(printed)
    if shown_text != printed_text:
        return False
    return all(map(_number_matches, _NUMBER.findall(shown), _NUMBER.findall(printed)))


def output_matches(shown: list[str], printed: list[str]) -> bool:
    """The whole output: ``...`` lines match any run of printed lines (also none)."""
    shown, printed = _trim(shown), _trim(printed)
    memo: dict[tuple[int, int], bool] = {}

    def match(i: int, j: int) -> bool:
        if (i, j) not in memo:
            if i == len(shown):
                result = j == len(printed)
            elif shown[i].strip() == WILDCARD_LINE:
                result = any(match(i + 1, k) for k in range(j, len(printed) + 1))
            else:
                result = j < len(printed) and line_matches(shown[i], printed[j]) and match(i + 1, j + 1)
            memo[i, j] = result
        return memo[i, j]

    return match(0, 0)


# -- the program that runs a page in the run-time environment ----------------------------------------
DRIVER = r"""
import json, os, subprocess, tempfile, traceback
steps = json.load(open(sys.argv[1], encoding="utf-8"))
namespace = {"__name__": "__main__"}
results = []

def run_python(code, name):
    sys.stdout.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(1)
        os.dup2(sink.fileno(), 1)
        error = None
        try:
            exec(compile(code, name, "exec"), namespace)
        except BaseException:
            error = traceback.format_exc()
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        sink.seek(0)
        return {"out": sink.read().decode("utf-8", "replace"), "error": error}

for step in steps:
    if step["kind"] == "python":
        result = run_python(step["code"], step["name"])
    else:
        done = subprocess.run(["bash", "-c", step["code"]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        result = {"out": done.stdout.decode("utf-8", "replace"), "rc": done.returncode}
    results.append(result)
    if result.get("error"):
        break
with open(sys.argv[2], "w", encoding="utf-8") as fh:
    json.dump(results, fh)
"""

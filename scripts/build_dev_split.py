"""Build the dev splits that chose hybrid search's defaults: Python docstrings, and manual pages.

Not BEIR data, nor anything like it. ``--source stdlib`` (the first split):
each function or class docstring of the standard library with a summary line
and a body of at least 15 words gives one query (the summary line) and one
relevant document (the body, without the summary). ``--source man``: each
English manual page in sections 1, 5, 7 and 8 under ``/usr/share/man``
whose NAME line describes it in 3 words or more gives one query (that
description, as "list directory contents") and one document (the first 250
words of its DESCRIPTION). Every document is in the corpus, so the others
are the distractors. Written in the BEIR layout that ``sse-np eval`` reads::

    python scripts/build_dev_split.py OUT_DIR [--source stdlib|man] [--queries 1500] [--seed 0]
    sse-np eval OUT_DIR --retrieval dense,bm25,hybrid --hybrid-weight 0.5

A split depends on the machine's Python (the stdlib) or installed manual
pages; SOURCE.json records which. ``scripts/tune_hybrid.py``,
``tune_fusion.py`` and ``compare_lexical_tokens.py`` read them.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import random
import re
import sys
import sysconfig
from pathlib import Path


def _docstrings(root: Path):
    """(qualified name, docstring) of every function and class under ``root``, in path order."""
    for path in sorted(root.rglob("*.py")):
        if any(part in {"test", "tests", "idlelib", "site-packages", "lib2to3"} for part in path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node)
                if doc:
                    yield f"{path.relative_to(root)}:{node.name}", doc


def _pair(doc: str) -> tuple[str, str] | None:
    """(summary line, body) of a docstring, or None when either is too thin."""
    summary, _, body = doc.strip().partition("\n")
    summary, body = summary.strip(), " ".join(body.split())
    if len(summary.split()) < 4 or len(body.split()) < 15:
        return None
    return summary, body


# roff escapes, in order: fonts (\fB), sizes (\s-1), named glyphs (\(em, \[...]), the minus, spacing and
# zero-width marks, the backslash, and comments.
_ROFF = [
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),
    (re.compile(r"\\s[-+]?\d+"), ""),
    (re.compile(r"\\\*?\(.."), " "),
    (re.compile(r"\\\*?\[[^\]]*\]"), " "),
    (re.compile(r"\\-"), "-"),
    (re.compile(r"\\[&,/|^~:%]"), ""),
    (re.compile(r"\\e"), "\\\\"),
    (re.compile(r"\\ "), " "),
    (re.compile(r'\\".*'), ""),
]
_TEXT_MACRO = re.compile(r"[.'](?:B|I|BR|RB|BI|IB|IR|RI|SM|SB)\s+(.*)")  # macros whose arguments are text


def _roff_text(line: str) -> str:
    for pattern, repl in _ROFF:
        line = pattern.sub(repl, line)
    return line


def _man_sections(source: str) -> dict[str, str]:
    """Each ``.SH`` section's plain text (roff requests dropped, text macros kept)."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in source.splitlines():
        if line.startswith(".SH"):
            current = _roff_text(line[3:]).strip().strip('"').upper()
            sections.setdefault(current, [])
        elif current is not None:
            if line.startswith((".", "'")):
                macro = _TEXT_MACRO.match(line)
                if not macro:
                    continue
                line = macro.group(1).replace('"', "")
            sections[current].append(_roff_text(line))
    return {name: " ".join(" ".join(lines).split()) for name, lines in sections.items()}


def _man_pages(root: Path = Path("/usr/share/man")):
    """(page file, (NAME description, first 250 words of DESCRIPTION)) of English pages in sections 1, 5, 7, 8."""
    for section in ("man1", "man5", "man7", "man8"):
        for path in sorted((root / section).glob("*.gz")):
            try:
                with gzip.open(path, "rt", encoding="utf-8") as f:
                    source = f.read()
            except (OSError, UnicodeDecodeError):
                continue
            sections = _man_sections(source)
            name, description = sections.get("NAME", ""), sections.get("DESCRIPTION", "")
            if " - " not in name:
                continue
            query, body = name.split(" - ", 1)[1].strip(), " ".join(description.split()[:250])
            if len(query.split()) >= 3 and len(body.split()) >= 20:
                yield path.name, (query, body)


def _stdlib_pairs():
    for name, doc in _docstrings(Path(sysconfig.get_paths()["stdlib"])):
        pair = _pair(doc)
        if pair:
            yield name, pair


def build(out: Path, n_queries: int, seed: int, source: str = "stdlib") -> dict[str, int]:
    pairs: dict[str, tuple[str, str]] = {}
    seen: set[str] = set()
    bodies: set[str] = set()
    for name, pair in _stdlib_pairs() if source == "stdlib" else _man_pages():
        if pair[0].lower() not in seen and pair[1] not in bodies:  # one query per text, one document per body
            seen.add(pair[0].lower())
            bodies.add(pair[1])
            pairs[name] = pair
    names = list(pairs)
    chosen = sorted(random.Random(seed).sample(names, min(n_queries, len(names))))
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as f:
        for i, name in enumerate(names):
            f.write(json.dumps({"_id": f"d{i}", "title": "", "text": pairs[name][1]}) + "\n")
    doc_of = {name: f"d{i}" for i, name in enumerate(names)}
    with open(out / "queries.jsonl", "w", encoding="utf-8") as f, open(out / "qrels" / "test.tsv", "w") as q:
        q.write("query-id\tcorpus-id\tscore\n")
        for j, name in enumerate(chosen):
            f.write(json.dumps({"_id": f"q{j}", "text": pairs[name][0]}) + "\n")
            q.write(f"q{j}\t{doc_of[name]}\t1\n")
    info = {"documents": len(names), "queries": len(chosen)}
    what = f"Python {sys.version.split()[0]} stdlib docstrings" if source == "stdlib" else "manual pages"
    (out / "SOURCE.json").write_text(json.dumps({"source": what, **info}))
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--queries", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", choices=("stdlib", "man"), default="stdlib")
    args = parser.parse_args()
    print(build(args.out, args.queries, args.seed, args.source))


if __name__ == "__main__":
    main()

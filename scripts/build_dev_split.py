"""Build the dev split that chose hybrid search's defaults: docstrings of Python's standard library.

Not BEIR data, nor anything like it: each function or class docstring of the
standard library with a summary line and a body of at least 15 words gives
one query (the summary line) and one relevant document (the body, without
the summary). Every body is in the corpus, so the other bodies are the
distractors. Written in the BEIR layout that ``sse-np eval`` reads::

    python scripts/build_dev_split.py OUT_DIR [--queries 1500] [--seed 0]
    sse-np eval OUT_DIR --retrieval dense,bm25,hybrid --hybrid-weight 0.5

The split depends on the Python version's standard library (the summary
line records it); ``scripts/tune_hybrid.py`` sweeps the weight on it.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
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


def build(out: Path, n_queries: int, seed: int) -> dict[str, int]:
    root = Path(sysconfig.get_paths()["stdlib"])
    pairs: dict[str, tuple[str, str]] = {}
    seen: set[str] = set()
    for name, doc in _docstrings(root):
        pair = _pair(doc)
        if pair and pair[0].lower() not in seen and pair[1] not in {b for _, b in pairs.values()}:
            seen.add(pair[0].lower())
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
    source = f"Python {sys.version.split()[0]} stdlib docstrings"
    (out / "SOURCE.json").write_text(json.dumps({"source": source, **info}))
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--queries", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build(args.out, args.queries, args.seed))


if __name__ == "__main__":
    main()

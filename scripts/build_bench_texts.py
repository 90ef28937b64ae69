"""Build ``sse_np/bench/texts.json.gz``: the real-text sample ``sse-np bench`` ships with.

``python scripts/build_bench_texts.py``

The texts are the docstrings of the Python standard library of the running
interpreter (modules, classes, functions), read with ``ast`` (nothing is
imported). Python's source and documentation are under the PSF License
Agreement (permissive; https://docs.python.org/3/license.html), which the
file records. Documents: whole docstrings of 200 to 2,000 characters, white
space collapsed; short texts: first sentences of 15 to 120 characters. Both
are deduplicated and picked by a hash of their text, so a rebuild with the
same Python gives the same file.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import inspect
import json
import platform
import re
import sysconfig
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "sse_np" / "bench" / "texts.json.gz"
SKIP = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "turtledemo", "__pycache__"}
DOCS, SHORT = 900, 4000


def _docstrings(stdlib: Path) -> list[str]:
    found = []
    for path in sorted(stdlib.rglob("*.py")):
        if SKIP & set(path.relative_to(stdlib).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=True)
                if doc:
                    found.append(doc)
    return found


def _pick(texts: list[str], n: int) -> list[str]:
    """``n`` texts chosen by the hash of their text (stable across runs), in that order."""
    unique = list(dict.fromkeys(texts))
    return sorted(unique, key=lambda t: hashlib.sha256(t.encode()).hexdigest())[:n]


def main() -> None:
    raw = _docstrings(Path(sysconfig.get_paths()["stdlib"]))
    docs, short = [], []
    for doc in raw:
        flat = re.sub(r"\s+", " ", inspect.cleandoc(doc)).strip()
        if 200 <= len(flat) <= 2000:
            docs.append(flat)
        first = re.split(r"(?<=[.!?])\s", flat, maxsplit=1)[0]
        if 15 <= len(first) <= 120 and " " in first:
            short.append(first)
    payload = {
        "source": f"docstrings of the Python {platform.python_version()} standard library",
        "licence": "PSF License Agreement for Python (https://docs.python.org/3/license.html)",
        "short": _pick(short, SHORT),
        "documents": _pick(docs, DOCS),
    }
    data = json.dumps(payload, ensure_ascii=False, indent=0).encode()
    OUT.write_bytes(gzip.compress(data, mtime=0))
    print(
        f"{OUT.name}: {len(payload['short'])} short texts, {len(payload['documents'])} documents, "
        f"{len(data) / 1e3:.0f} KB of JSON, {OUT.stat().st_size / 1e3:.0f} KB compressed"
    )


if __name__ == "__main__":
    main()

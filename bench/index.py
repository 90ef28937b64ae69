"""sse_np.Index benchmark: build time and size, load time, and query latency per mode, against bm25s and FAISS.

Run from a checkout with the test extra (bm25s, faiss-cpu)::

    flock /tmp/sse_np_bench.lock .venv/bin/python bench/index.py [--docs 10000,100000] [--queries 200]
    flock /tmp/sse_np_bench.lock .venv/bin/python bench/index.py --docs 1000000 --merge

Writes bench/results/INDEX_RESULTS.md and bench/results/index_results.json
(``--merge``: replaces only the sizes run now and keeps the others, each
size with the time of its own run; the peers of a size always come from the
same run as our rows).

Documents are added in chunks (``--chunk``, 100,000 by default) so that a
million of them fit a small machine; each size reports the peak resident
memory of the process while it ran (Linux: VmHWM, reset per size).

Documents: the short synthetic documents of bench/search.py (1-6 sentences
of the shared corpora, recombined at random). Queries: the real queries of
the three datasets. Latency is one query at a time, end to end (encoding or
tokenizing the query included, for every engine), in the same run:
``sse_np.Index.search`` per mode and precision, ``bm25s`` (method "lucene",
English stopwords) ``retrieve``, and FAISS ``IndexFlatIP`` on our vectors
(the query encoded by our model). p50/p99 over the queries; queries/s =
1 / mean latency.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from bench.search import DATA, DATASETS, synthetic_corpus  # noqa: E402

# (precision, dim, lexical, stemmer): BM25 over the default tokens (words, WordPiece ids and word pairs),
# except a row over WordPiece ids alone (the first default) and one over stemmed words and their pairs
# (the stem extra; skipped without it)
CONFIGS = (
    ("float32", 256, None, None),
    ("float32", 512, None, None),
    ("binary", 512, None, None),
    ("binary", 512, "pieces", None),
    ("binary", 512, None, "english"),
)
TOKENS = "words+pieces+pairs"  # the Index default these rows ran with, recorded per size
_TOKEN_NAMES = {
    "pieces": "WordPiece ids",
    "words": "whole words",
    "words+pieces+pairs": "words, WordPiece ids and word pairs",
}
MODES = ("dense", "bm25", "hybrid")


def _queries(n: int) -> list[str]:
    from sse_np.eval import load_beir

    texts = [t for name in DATASETS for t in load_beir(DATA / name).query_texts]
    return [texts[i] for i in np.random.default_rng(1).permutation(len(texts))[:n]]


def _latency(fn: Any, queries: list[str]) -> dict[str, float]:
    fn(queries[0])  # warm (numba, caches)
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "qps": 1e3 / ms.mean()}


def _reset_peak_rss() -> None:
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_bytes() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _chunks(docs: list[str], size: int) -> Any:
    for start in range(0, len(docs), size):
        yield docs[start : start + size]


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


def ours(model: Any, docs: list[str], queries: list[str], tmp: Path, chunk: int) -> dict[str, Any]:
    from sse_np import Index

    out: dict[str, Any] = {}
    for precision, dim, lexical, stemmer in CONFIGS:
        t = time.perf_counter()
        try:
            index = Index(model, dim=dim, precision=precision, lexical=lexical, stemmer=stemmer)
        except ImportError:
            continue
        for part in _chunks(docs, chunk):
            index.add(part)
        index._build()  # the postings and codes are built at the first search or save
        build = time.perf_counter() - t
        name = f"{precision}@{dim}" + (f" {lexical}" if lexical else "") + (f" {stemmer} stems" if stemmer else "")
        folder = tmp / name.replace(" ", "_")
        index.save(folder)
        loads = []
        for _ in range(5):
            t = time.perf_counter()
            loaded = Index.load(folder, model)
            loads.append(time.perf_counter() - t)
        row: dict[str, Any] = {"build_s": build, "bytes": _folder_bytes(folder), "load_s": min(loads)}
        for mode in MODES:
            row[mode] = _latency(lambda q, m=mode, ix=loaded: ix.search(q, k=10, mode=m), queries)
        out[name] = row
        del index, loaded  # before the next configuration is built: one index in memory at a time
        shutil.rmtree(folder)
    return out


def bm25s_peer(docs: list[str], queries: list[str]) -> dict[str, Any]:
    import bm25s

    t = time.perf_counter()
    retriever = bm25s.BM25(method="lucene")
    retriever.index(bm25s.tokenize(docs, stopwords="en", show_progress=False), show_progress=False)
    build = time.perf_counter() - t

    def one(q: str) -> Any:
        tokens = bm25s.tokenize([q], stopwords="en", show_progress=False)
        return retriever.retrieve(tokens, k=10, show_progress=False, n_threads=1)

    return {"build_s": build, "bm25": _latency(one, queries)}


def faiss_peer(model: Any, docs: list[str], queries: list[str], dim: int, chunk: int) -> dict[str, Any]:
    import faiss

    index = faiss.IndexFlatIP(dim)
    build = 0.0
    for part in _chunks(docs, chunk):
        vectors = np.ascontiguousarray(model.encode(part, dim=dim), dtype=np.float32)
        t = time.perf_counter()
        index.add(vectors)
        build += time.perf_counter() - t

    def one(q: str) -> Any:
        return index.search(model.encode([q], dim=dim), 10)

    return {"build_s (vectors given)": build, "dense": _latency(one, queries)}


def _cell(t: dict[str, float]) -> str:
    return f"{t['p50_ms']:.2f}/{t['p99_ms']:.2f} ({t['qps']:.0f})"


def report(res: dict[str, Any]) -> str:
    lines = [
        "# sse_np.Index: build, load and query latency",
        "",
        f"Generated by `bench/index.py` on {res['when']} ({res['machine']}); single queries end to end, "
        f"{res['n_queries']} real BEIR queries, k=10. The machine is shared: compare rows of one run.",
        "",
    ]
    for n, by in res["sizes"].items():
        lines += [f"## {int(n):,} documents", ""]
        notes = [f"run on {by['when']}, {by.get('n_queries', res['n_queries'])} queries"] if "when" in by else []
        if by.get("peak_rss_bytes"):
            notes.append(f"peak RSS of the bench process {by['peak_rss_bytes'] / 2**30:.1f} GiB")
        tokens = by.get("bm25_tokens", "pieces")  # sizes run before whole words became the default
        notes.append(f"BM25 rows without a suffix on {_TOKEN_NAMES[tokens]}")
        if notes:  # "when": merged from a run of its own (--merge)
            text = "; ".join(notes)
            lines += [text[0].upper() + text[1:] + ".", ""]
        lines += [
            "| engine | build s | size MB | load ms | dense p50/p99 ms (q/s) | bm25 p50/p99 ms (q/s) "
            "| hybrid p50/p99 ms (q/s) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, row in by["sse_np"].items():
            cells = [
                f"{row[m]['p50_ms']:.2f}/{row[m]['p99_ms']:.2f} ({row[m]['qps']:.0f})"
                for m in ("dense", "bm25", "hybrid")
            ]
            lines.append(
                f"| sse_np {name} | {row['build_s']:.2f} | {row['bytes'] / 1e6:.1f} | {row['load_s'] * 1e3:.1f} | "
                + " | ".join(cells)
                + " |"
            )
        b = by["bm25s"]["bm25"]
        lines.append(
            f"| bm25s lucene | {by['bm25s']['build_s']:.2f} |  |  |  | "
            f"{b['p50_ms']:.2f}/{b['p99_ms']:.2f} ({b['qps']:.0f}) |  |"
        )
        if "faiss" in by:
            f = by["faiss"]["dense"]
            lines.append(
                f"| faiss IndexFlatIP @256 |  |  |  | {f['p50_ms']:.2f}/{f['p99_ms']:.2f} ({f['qps']:.0f}) |  |  |"
            )
        lines.append("")
    return "\n".join(lines)


def one_size(model: Any, n: int, queries: list[str], chunk: int, when: str | None) -> dict[str, Any]:
    """Our rows and the peers' for ``n`` documents, with the peak RSS of the process meanwhile."""
    _reset_peak_rss()
    docs = synthetic_corpus(n)
    with tempfile.TemporaryDirectory() as tmp:
        by: dict[str, Any] = {"sse_np": ours(model, docs, queries, Path(tmp), chunk), "bm25_tokens": TOKENS}
    by["bm25s"] = bm25s_peer(docs, queries)
    with contextlib.suppress(ImportError):  # faiss-cpu is optional here
        by["faiss"] = faiss_peer(model, docs, queries, 256, chunk)
    if when is not None:
        by["when"], by["n_queries"] = when, len(queries)
    by["peak_rss_bytes"] = _peak_rss_bytes()
    return by


def _merged(path: Path, res: dict[str, Any]) -> dict[str, Any]:
    """The existing results with each old size stamped with its own run time; ``res``'s header on top."""
    if not path.is_file():
        return res
    old = json.loads(path.read_text())
    for by in old["sizes"].values():
        by.setdefault("when", old["when"])
        by.setdefault("n_queries", old["n_queries"])
    res["sizes"] = old["sizes"]
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", default="10000,100000")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--out", default=str(REPO / "bench" / "results"))
    p.add_argument("--chunk", type=int, default=100_000, help="documents per Index.add call")
    p.add_argument("--merge", action="store_true", help="keep the other sizes of the existing results")
    args = p.parse_args()
    import sse_np

    model = sse_np.default_model()
    model.warmup()
    queries = _queries(args.queries)
    res: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "n_queries": len(queries),
        "versions": {"sse_np": sse_np.__version__, "numpy": np.__version__},
        "sizes": {},
    }
    out = Path(args.out)
    if args.merge:
        res = _merged(out / "index_results.json", res)
    for n in (int(x) for x in args.docs.split(",")):
        res["sizes"][str(n)] = one_size(model, n, queries, args.chunk, res["when"] if args.merge else None)
        print(json.dumps({n: res["sizes"][str(n)]}, indent=1), file=sys.stderr)
        _write(out, res)  # after each size: a long run that fails later keeps what it measured
    print(report(res))


def _write(out: Path, res: dict[str, Any]) -> None:
    (out / "index_results.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "INDEX_RESULTS.md").write_text(report(res))


if __name__ == "__main__":
    main()

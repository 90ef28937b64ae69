"""How one ``encode`` call scales with threads, against the forked-process ceiling, in one run.

``python bench/scaling.py [--model weights] [--repeat 5] [--max-threads N]``

Rows: ``threads`` = 1, 2, 4, ... up to the usable cores, then twice and four
times that (oversubscribed). Columns, each the median of ``--repeat`` runs
(the spread in the JSON):

* documents/s -- every BEIR document (title + text) in one call, dim 512;
* short texts/s -- ~20k distinct short texts (queries, titles, first
  sentences) in one call, dim 256;
* calls of 32/s -- the short texts in calls of 32, one caller;
* 4 callers x 32 -- four Python threads, each making calls of 32;
* latency p50 -- one short text a call;
* the forked-process ceiling -- ``threads`` processes of one thread each,
  each encoding 1/threads of the texts (forked after loading, so they
  share the memory-mapped table), and each row's ratio to it;
* documents/s with one batch holding the whole input (``batch_size`` =
  all), against the default ``batch_size``.

A second table: MB/s of text at one thread for ASCII documents, the same
documents with 2% and 20% of their words accented, and CJK text.

Writes ``bench/results/scaling.json`` (``--out``) and the "Scaling"
section of ``bench/results/RESULTS.md``. The texts come from
``../shared/data`` (read only, never copied).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
DATASETS = ("scifact", "nfcorpus", "msmarco-dl19-5k")
RESULTS = ROOT / "bench" / "results"


# ----------------------------------------------------------------- texts
def _jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def texts() -> tuple[list[str], list[str]]:
    """(documents, distinct short texts) from the BEIR folders."""
    docs, short = [], []
    for name in DATASETS:
        folder = DATA / name
        if not (folder / "corpus.jsonl").is_file():
            continue
        short += [q["text"] for q in _jsonl(folder / "queries.jsonl")]
        for d in _jsonl(folder / "corpus.jsonl"):
            docs.append((d.get("title", "") + " " + d.get("text", "")).strip())
            if d.get("title"):
                short.append(d["title"])
            first = re.split(r"(?<=[.!?])\s+", d.get("text", ""))[0]
            if 8 <= len(first) <= 80:
                short.append(first)
    if not docs:
        raise SystemExit(f"no BEIR data under {DATA}")
    return docs, [t for t in dict.fromkeys(short) if len(t) <= 120]


_ACCENTS = str.maketrans("aeiouc", "àéîõüç")


def accented(docs: list[str], share: float) -> list[str]:
    """``docs`` with about ``share`` of their words accented (every vowel of a chosen word; deterministic)."""
    step = round(1 / share)
    out = []
    for d in docs:
        words = d.split(" ")
        out.append(" ".join(w.translate(_ACCENTS) if (hash_word(w) % step == 0) else w for w in words))
    return out


def hash_word(word: str) -> int:
    h = 2166136261
    for c in word.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h


def cjk(docs: list[str], vocab: dict[str, int]) -> list[str]:
    """CJK text of the same shape: each English word becomes 1-3 ideographs of the vocabulary, deterministically,
    sentence punctuation becomes '，' and '。'."""
    chars = sorted(t for t in vocab if len(t) == 1 and 0x4E00 <= ord(t) <= 0x9FFF)
    out = []
    for d in docs:
        parts = []
        for w in d.split():
            h = hash_word(w)
            parts.append("".join(chars[(h >> (8 * k)) % len(chars)] for k in range(1 + h % 3)))
            if w.endswith((".", "!", "?")):
                parts.append("。")
            elif w.endswith(","):
                parts.append("，")
        out.append("".join(parts))
    return out


# ----------------------------------------------------------------- timing
def _median_rate(fn, count: int, repeat: int) -> tuple[float, list[float]]:
    rates = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        rates.append(count / (time.perf_counter() - t))
    return statistics.median(rates), rates


def _calls(model, batches, dim):
    for b in batches:
        model.encode(b, dim)


def _callers(model, batches, dim, n: int):
    parts = [batches[i::n] for i in range(n)]
    threads = [threading.Thread(target=_calls, args=(model, p, dim)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _latency_p50(model, queries: list[str], dim: int, n: int = 2000) -> float:
    times = []
    for q in (queries * (n // len(queries) + 1))[:n]:
        t = time.perf_counter()
        model.encode(q, dim)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def _ceiling(model, items: list[str], dim: int, procs: int, repeat: int) -> tuple[float, list[float]]:
    """texts/s of ``procs`` forked processes of one thread, each encoding 1/procs of ``items``."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    rates = []
    for _ in range(repeat):
        start = ctx.Barrier(procs + 1)
        done = ctx.Queue()

        def child(part: list[str]) -> None:
            model.threads = 1
            start.wait()
            model.encode(part, dim)
            done.put(time.perf_counter())

        kids = [ctx.Process(target=child, args=(items[i::procs],)) for i in range(procs)]
        for k in kids:
            k.start()
        start.wait()
        t0 = time.perf_counter()
        end = max(done.get() for _ in kids)
        for k in kids:
            k.join()
        rates.append(len(items) / (end - t0))
    return statistics.median(rates), rates


# ----------------------------------------------------------------- runs
def run(model_path: str, repeat: int, max_threads: int | None) -> dict:
    import sse_np
    from sse_np.engine import parallel

    docs, short = texts()
    model = sse_np.load(model_path, backend="numba")
    model.encode(docs[:200], 512)
    model.encode(short[:200], 256)
    cores = parallel.cores()
    top = max_threads or cores
    counts = [1]
    while counts[-1] * 2 <= top:
        counts.append(counts[-1] * 2)
    counts += [top * 2, top * 4] if max_threads is None else []
    batches = [short[i : i + 32] for i in range(0, len(short) - 31, 32)]
    n32 = 32 * len(batches)
    rows = []
    for t in counts:
        model.threads = t
        row: dict = {"threads": t}
        row["docs"], row["docs_runs"] = _median_rate(lambda: model.encode(docs, 512), len(docs), repeat)
        row["short"], row["short_runs"] = _median_rate(lambda: model.encode(short, 256), len(short), repeat)
        row["calls32"], row["calls32_runs"] = _median_rate(lambda: _calls(model, batches, 256), n32, repeat)
        row["callers4x32"], row["callers4x32_runs"] = _median_rate(
            lambda: _callers(model, batches, 256, 4), n32, repeat
        )
        row["latency_p50_us"] = _latency_p50(model, short, 256)
        if t <= cores:
            row["ceiling_docs"], row["ceiling_docs_runs"] = _ceiling(model, docs, 512, t, repeat)
            row["ceiling_short"], row["ceiling_short_runs"] = _ceiling(model, short, 256, t, repeat)
        rows.append(row)
        print(
            f"threads={t}: " + ", ".join(f"{k} {v:,.0f}" for k, v in row.items() if isinstance(v, float)),
            file=sys.stderr,
            flush=True,
        )
    model.threads = cores
    whole, whole_runs = _median_rate(lambda: model.encode(docs, 512, batch_size=len(docs)), len(docs), repeat)
    default, default_runs = _median_rate(lambda: model.encode(docs, 512), len(docs), repeat)
    model.threads = 1
    vocab = model.tokenizer.get_vocab()
    mb = {}
    for label, sample in (
        ("ASCII", docs),
        ("2% of words accented", accented(docs, 0.02)),
        ("20% of words accented", accented(docs, 0.2)),
        ("CJK", cjk(docs, vocab)),
    ):
        size = sum(len(d.encode()) for d in sample) / 1e6
        rate, runs = _median_rate(lambda s=sample: model.encode(s, 512), 1, repeat)
        mb[label] = {"MB_per_s": size * rate, "runs": [size * r for r in runs], "MB": size}
    return {
        "machine": _machine(cores),
        "model": model_path,
        "docs": {"count": len(docs), "mean_chars": sum(map(len, docs)) / len(docs)},
        "short": {"count": len(short), "mean_chars": sum(map(len, short)) / len(short)},
        "rows": rows,
        "batch": {
            "threads": cores,
            "default": default,
            "default_runs": default_runs,
            "whole": whole,
            "whole_runs": whole_runs,
        },
        "non_ascii": mb,
    }


def _machine(cores: int) -> dict:
    import numba
    import tokenizers

    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    return {
        "cpu": cpu,
        "cores": cores,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "tokenizers": tokenizers.__version__,
        "os": platform.platform(),
    }


# ----------------------------------------------------------------- report
def report(res: dict) -> str:
    m = res["machine"]
    lines = [
        f"## Scaling: one `encode` call, {m['cores']} cores ({m['cpu']})",
        "",
        f"`python bench/scaling.py` -- Python {m['python']}, numpy {m['numpy']}, numba {m['numba']}. "
        f"{res['docs']['count']:,} documents ({res['docs']['mean_chars']:.0f} characters on average, dim 512), "
        f"{res['short']['count']:,} distinct short texts ({res['short']['mean_chars']:.0f} characters, dim 256); "
        "medians. Ceiling: that many forked processes of one thread each; ratio = threaded / ceiling.",
        "",
        "| threads | documents/s | ceiling | ratio | short texts/s, one call | ceiling | ratio "
        "| calls of 32/s | 4 callers x 32/s | latency p50, µs |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        cd, cs = r.get("ceiling_docs"), r.get("ceiling_short")
        ceil_d, ratio_d = (f"{cd:,.0f}", f"{r['docs'] / cd:.2f}") if cd else ("-", "-")
        ceil_s, ratio_s = (f"{cs:,.0f}", f"{r['short'] / cs:.2f}") if cs else ("-", "-")
        lines.append(
            f"| {r['threads']} | {r['docs']:,.0f} | {ceil_d} | {ratio_d} | {r['short']:,.0f} | {ceil_s} | "
            f"{ratio_s} | {r['calls32']:,.0f} | {r['callers4x32']:,.0f} | {r['latency_p50_us']:.1f} |"
        )
    b = res["batch"]
    lines += [
        "",
        f"Documents at {b['threads']} threads: default `batch_size` {b['default']:,.0f}/s, one batch holding "
        f"the whole input {b['whole']:,.0f}/s (ratio {b['default'] / b['whole']:.2f}).",
        "",
        "| text (1 thread, dim 512) | MB/s | vs ASCII |",
        "|---|---:|---:|",
    ]
    base = res["non_ascii"]["ASCII"]["MB_per_s"]
    for label, v in res["non_ascii"].items():
        lines.append(f"| {label} | {v['MB_per_s']:.1f} | {v['MB_per_s'] / base:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "weights"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--max-threads", type=int, default=None, help="largest thread count (default: the cores)")
    ap.add_argument("--out", default=str(RESULTS / "scaling.json"))
    ap.add_argument("--no-section", action="store_true", help="do not write the RESULTS.md section")
    args = ap.parse_args(argv)
    res = run(args.model, args.repeat, args.max_threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    text = report(res)
    print(text)
    if not args.no_section:
        _write_section(text, res["machine"]["cores"])
    return 0


def _write_section(text: str, cores: int) -> None:
    results = RESULTS / "RESULTS.md"
    begin, end = f"<!-- scaling:{cores} -->", f"<!-- /scaling:{cores} -->"
    old = results.read_text() if results.exists() else "# Benchmark results\n"
    block = f"{begin}\n{text}{end}"
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    results.write_text(new)


if __name__ == "__main__":
    sys.exit(main())

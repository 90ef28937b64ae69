"""Bulk embedding benchmark: plain ``sse-np encode`` vs Ray (1 and 2 actors) vs sentence-transformers on Ray.

Usage (from the repository root, with the ``ray`` and ``test`` extras installed)::

    python bench/ray_bench.py [--texts 1000000] [--repeat 3] [--batch-16384] [--footer-actors 1]

Builds a Parquet corpus under ``bench/_work/ray_corpus`` (git-ignored) by
recombining sentences of the ../shared/data BEIR corpora, then times on the
same input, in one run:

* ``cli``: ``sse-np encode CORPUS -o OUT.parquet --threads N`` (a process each),
* ``ray``: ``sse-np encode CORPUS -o OUT_DIR --ray --actors N --threads 1`` on a
  running local cluster (cluster start-up timed apart; actor start and model
  load are inside),
* ``ray_data``: ``read_parquet -> map_batches(actor) -> write_parquet`` with the
  sse_np actor (:func:`sse_np.bulk.ray.embed_dataset`) and with a
  sentence-transformers actor (StaticEmbedding + DyT, torch threads = actor CPUs).

Ray Data 2.60's ``read_parquet`` starts ``RAY_DATA_PARQUET_FOOTER_NUM_ACTORS``
actors (default 32) to read the files' footers, and kills them when it has
listed the files: on these 2 cores that was 7-12 fresh worker processes of
~1.5 CPU-s each in every pipeline, more CPU than Ray Data then spent
moving the data. This driver sets it to 1 (``--footer-actors``;
``--footer-actors 32`` measures Ray's default), the same for every row.

Every row runs in every round, interleaved (sentence-transformers too), so
the shared machine's drifts hit every row alike. Writes
``bench/results/RAY_RESULTS.md`` and ``bench/results/RAY_RESULTS.json``: medians, the
ratios of the medians, and the sse_np / sentence-transformers ratio within
each round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / "_work"
SHARED = REPO.parent / "shared" / "data"
N_FILES = 8


def build_corpus(n: int, seed: int = 0) -> Path:
    """``n`` texts of 1-3 sentences drawn from the shared corpora, in ``N_FILES`` Parquet files (cached)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = WORK / f"ray_corpus_{n}"
    if (out / "_DONE").is_file():
        return out
    sentences: list[str] = []
    for corpus in sorted(SHARED.glob("*/corpus.jsonl")):
        with open(corpus, encoding="utf-8") as fh:
            for line in fh:
                doc = json.loads(line)
                text = ((doc.get("title") or "") + ". " + (doc.get("text") or "")).strip()
                sentences += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.strip()) > 3]
    if not sentences:
        raise SystemExit(f"no corpora under {SHARED}")
    rng = random.Random(seed)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    per = -(-n // N_FILES)
    for f in range(N_FILES):
        rows = range(f * per, min(n, (f + 1) * per))
        texts = [" ".join(rng.choice(sentences) for _ in range(rng.randint(1, 3)))[:1000] for _ in rows]
        table = pa.table({"_id": [f"t{i}" for i in rows], "text": texts})
        pq.write_table(table, out / f"part-{f:02d}.parquet", row_group_size=65536)
    (out / "_DONE").write_text(str(n))
    return out


def _cli(corpus: Path, out: Path, threads: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sse_np",
            "encode",
            str(corpus),
            "-o",
            str(out),
            "--threads",
            str(threads),
            "--no-progress",
        ],
        check=True,
        cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def _ray_cli(corpus: Path, out: Path, actors: int) -> float:
    from sse_np.cli import main

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    rc = main(
        ["encode", str(corpus), "-o", str(out), "--ray", "--actors", str(actors), "--threads", "1", "--no-progress"]
    )
    assert rc == 0
    return time.perf_counter() - t0


class STEmbedder:
    """map_batches actor: sentence-transformers StaticEmbedding + DyT on the sse_np model's weights."""

    def __init__(self, model: str, threads: int) -> None:
        import torch
        from safetensors.numpy import load_file
        from sentence_transformers import SentenceTransformer
        from tokenizers import Tokenizer

        sys.path.insert(0, str(REPO / "bench"))
        from engines import _make_dyt_module  # the same DyT module the main benchmark uses

        try:
            from sentence_transformers.sentence_transformer.modules import StaticEmbedding
        except ImportError:
            from sentence_transformers.models import StaticEmbedding
        try:
            from sentence_transformers.base.modules.module import Module
        except ImportError:
            Module = torch.nn.Module
        torch.set_num_threads(threads)
        w = load_file(str(Path(model) / "model.safetensors"))
        static = StaticEmbedding(
            Tokenizer.from_file(str(Path(model) / "tokenizer.json")),
            embedding_weights=w["embedding.weight"].astype(np.float32),
        )
        dyt = _make_dyt_module(torch, Module)(w["dyt.alpha"], w["dyt.beta"], w["dyt.bias"])
        self.model = SentenceTransformer(modules=[static, dyt], device="cpu")
        self.model.eval()

    def __call__(self, batch):
        from sse_np.bulk.parquet import vectors_array

        texts = batch.column("text").to_pylist()
        vectors = self.model.encode(
            texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return batch.append_column("embedding", vectors_array(vectors))


class ZeroEmbedder:
    """map_batches actor that costs nothing: zero vectors of the real output's shape (Ray Data's own cost)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def __call__(self, batch):
        from sse_np.bulk.parquet import vectors_array

        texts = batch.column("text").to_pylist()
        return batch.append_column("embedding", vectors_array(np.zeros((len(texts), self.dim), np.float32)))


def _ray_data(corpus: Path, out: Path, actors: int, which: str, model: str, batch_size: int | None = None) -> float:
    import pyarrow.parquet as pq
    import ray

    from sse_np.bulk.ray import embed_dataset

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    # One block per 25k rows: otherwise small files arrive as one block and only one actor works.
    blocks = max(2 * actors, -(-sum(pq.ParquetFile(p).metadata.num_rows for p in corpus.glob("*.parquet")) // 25_000))
    ds = ray.data.read_parquet(str(corpus), file_extensions=["parquet"], override_num_blocks=blocks)
    if which == "sse_np":
        kwargs = {} if batch_size is None else {"batch_size": batch_size}  # default: 4,096 rows
        ds = embed_dataset(ds, model=model, num_actors=actors, **kwargs)
    elif which == "none":  # Ray Data's own cost without the vectors: reading and writing the texts
        pass
    elif which == "zeros":  # Ray Data's own cost with the vectors: a model that costs nothing, same output
        ds = ds.map_batches(
            ZeroEmbedder,
            fn_constructor_kwargs={"dim": 512},
            batch_size=4096,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,
        )
    else:
        # 4,096 rows: sentence-transformers' best batch here (16,384 ran at 6.1k texts/s, 4,096 at 7.1k).
        ds = ds.map_batches(
            STEmbedder,
            fn_constructor_kwargs={"model": model, "threads": 1},
            batch_size=4096,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,
        )
    # Every pipeline writes its vectors as sse-np encode does (and the README recommends): no
    # dictionary and no compression for them (neither helps float vectors, both cost write time).
    vectors_plain = (
        {}
        if which == "none"
        else {
            "use_dictionary": ["_id", "text"],
            "compression": {"_id": "snappy", "text": "snappy", "embedding": "none"},
        }
    )
    ds.write_parquet(str(out), **vectors_plain)
    return time.perf_counter() - t0


def kernel_ratio(corpus: Path, model: str, n: int = 20000) -> dict[str, float]:
    """Encode alone, in this process, 1 thread: sse_np vs the sentence-transformers module (texts/s)."""
    import pyarrow.parquet as pq

    import sse_np

    texts = pq.read_table(sorted(corpus.glob("*.parquet"))[0], columns=["text"])["text"].to_pylist()[:n]
    m = sse_np.load(model, threads=1)
    m.warmup()
    best = []
    for _ in range(3):
        t0 = time.perf_counter()
        m.encode(texts, 512, batch_size=4096)
        best.append(time.perf_counter() - t0)
    st = STEmbedder(model, 1).model
    t0 = time.perf_counter()
    st.encode(texts, batch_size=4096, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    st_s = time.perf_counter() - t0
    out = {"texts": len(texts), "sse_np": len(texts) / min(best), "sentence_transformers": len(texts) / st_s}
    out["ratio"] = out["sse_np"] / out["sentence_transformers"]
    print(f"in-process encode, 1 thread: {out}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--st-repeat",
        type=int,
        default=None,
        help="rounds that also run the (slow) sentence-transformers rows (default: every round)",
    )
    parser.add_argument("--batch-16384", action="store_true", help="add a row with 16,384-row batches")
    parser.add_argument(
        "--footer-actors",
        type=int,
        default=1,
        help="RAY_DATA_PARQUET_FOOTER_NUM_ACTORS of the cluster (Ray's default: 32)",
    )
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # read_parquet reads it here, in the driver, when it plans the read (a runtime_env would not reach it).
    os.environ["RAY_DATA_PARQUET_FOOTER_NUM_ACTORS"] = str(args.footer_actors)
    import pyarrow.parquet as pq
    import ray

    import sse_np

    model = str(sse_np.default_model_path())
    subprocess.run([sys.executable, "-m", "sse_np", "warmup"], check=True, cwd=REPO)  # numba cache filled
    t0 = time.perf_counter()
    corpus = build_corpus(args.texts)
    build_s = time.perf_counter() - t0
    n = sum(pq.ParquetFile(p).metadata.num_rows for p in corpus.glob("*.parquet"))
    chars = sum(sum(map(len, pq.read_table(p, columns=["text"])["text"].to_pylist())) for p in corpus.glob("*.parquet"))
    out = WORK / "ray_out"
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, list[float]] = {}

    def add(key: str, seconds: float) -> None:
        times.setdefault(key, []).append(seconds)
        print(f"{key:<28}{seconds:8.2f} s  {n / seconds:12,.0f} texts/s", flush=True)

    kernel = kernel_ratio(corpus, model)
    t0 = time.perf_counter()
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    ray_start_s = time.perf_counter() - t0
    ray.data.DataContext.get_current().enable_progress_bars = False
    st_rounds = args.repeat if args.st_repeat is None else args.st_repeat
    try:
        # Every row in every round, interleaved, so drifts of the shared machine (±30% between
        # minutes here) hit every row alike; ratios are also taken within each round.
        for r in range(args.repeat):
            add("cli, 1 thread", _cli(corpus, out / "cli.parquet", 1))
            add("ray --ray, 1 actor", _ray_cli(corpus, out / "ray1", 1))
            add("cli, 2 threads", _cli(corpus, out / "cli.parquet", 2))
            add("ray --ray, 2 actors", _ray_cli(corpus, out / "ray2", 2))
            add("ray data sse_np, 1 actor", _ray_data(corpus, out / "rd1", 1, "sse_np", model))
            if r < st_rounds:
                add("ray data ST, 1 actor", _ray_data(corpus, out / "st1", 1, "st", model))
            add("ray data sse_np, 2 actors", _ray_data(corpus, out / "rd2", 2, "sse_np", model))
            if r < st_rounds:
                add("ray data ST, 2 actors", _ray_data(corpus, out / "st2", 2, "st", model))
            if args.batch_16384:
                add("ray data sse_np, 1 actor, batch 16384", _ray_data(corpus, out / "rd1b", 1, "sse_np", model, 16384))
            add("ray data, read + write only", _ray_data(corpus, out / "rd0", 1, "none", model))
            add("ray data, zero-cost model, 1 actor", _ray_data(corpus, out / "rdz", 1, "zeros", model))
    finally:
        ray.shutdown()
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: n / v for k, v in med.items()}
    overhead = {
        c: med[f"ray --ray, {c}"] / med[f"cli, {c.replace('actor', 'thread')}"] - 1 for c in ("1 actor", "2 actors")
    }
    vs_st = {c: rate[f"ray data sse_np, {c}"] / rate[f"ray data ST, {c}"] for c in ("1 actor", "2 actors")}
    # The same ratio within each round (sse_np and sentence-transformers minutes apart, not rounds apart).
    vs_st_rounds = {
        c: [st / ours for ours, st in zip(times[f"ray data sse_np, {c}"], times[f"ray data ST, {c}"])]
        for c in ("1 actor", "2 actors")
    }
    # If encoding cost nothing, the pipeline would run at the read + write rate: the best ratio any model could get.
    ceiling = {
        c: rate["ray data, zero-cost model, 1 actor"] / rate[f"ray data ST, {c}"] for c in ("1 actor", "2 actors")
    }
    per_core = rate["ray --ray, 1 actor"]
    scaling = rate["ray --ray, 2 actors"] / (2 * per_core)
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "ray": ray.__version__},
        "parquet_footer_actors": args.footer_actors,
        "texts": n,
        "mean_chars": chars / n,
        "files": N_FILES,
        "dim": sse_np.load(model).get_embedding_dimension(),
        "corpus_build_s": build_s,
        "ray_start_s": ray_start_s,
        "runs": times,
        "median_s": med,
        "texts_per_s": rate,
        "ray_overhead_vs_cli": overhead,
        "sse_np_vs_st_on_ray": vs_st,
        "sse_np_vs_st_on_ray_by_round": vs_st_rounds,
        "ceiling_vs_st_on_ray": ceiling,
        "two_actor_efficiency": scaling,
        "in_process_1_thread": kernel,
        "projection": {
            "per_core": per_core,
            "per_16_core_node": 16 * per_core * scaling,
            "cluster_16_nodes_x_16_cores": 16 * 16 * per_core * scaling,
        },
    }
    (REPO / "bench" / "results" / "RAY_RESULTS.json").write_text(json.dumps(report, indent=1))
    (REPO / "bench" / "results" / "RAY_RESULTS.md").write_text(markdown(report, args))
    print((REPO / "bench" / "results" / "RAY_RESULTS.md").read_text())


def markdown(r: dict, args: argparse.Namespace) -> str:
    lines = [
        "## Bulk embedding: Parquet and Ray (issue 15)",
        "",
        f"{r['date']}; {r['machine']['cpus']} CPUs (shared, noisy); Ray {r['machine']['ray']}; "
        f"{r['texts']:,} texts (mean {r['mean_chars']:.0f} chars, sentences of the shared corpora recombined) "
        f"in {r['files']} Parquet files; output dim {r['dim']}; medians of {args.repeat} interleaved runs "
        f"(sentence-transformers: {len(r['sse_np_vs_st_on_ray_by_round']['1 actor'])}), every row in every round. "
        f"Ray Data's Parquet footer actors: {r['parquet_footer_actors']} "
        f"(`RAY_DATA_PARQUET_FOOTER_NUM_ACTORS`; Ray's default, 32, started 7-12 short-lived worker processes "
        f"in every pipeline here). "
        f"Command: `python bench/ray_bench.py --texts {r['texts']} --repeat {args.repeat}"
        f"{'' if r['parquet_footer_actors'] == 1 else ' --footer-actors ' + str(r['parquet_footer_actors'])}`.",
        "",
        "| run | median s | texts/s |",
        "| --- | ---: | ---: |",
    ]
    for key, sec in r["median_s"].items():
        lines.append(f"| {key} | {sec:.2f} | {r['texts_per_s'][key]:,.0f} |")
    o, s = r["ray_overhead_vs_cli"], r["sse_np_vs_st_on_ray"]
    p = r["projection"]
    lines += [
        "",
        f"Ray cluster start (once, not in the rows): {r['ray_start_s']:.1f} s. Encode alone (in-process, 1 thread, "
        f"{r['in_process_1_thread']['texts']:,} texts, best of 3 / ST 1 run): sse_np "
        f"{r['in_process_1_thread']['sse_np']:,.0f} texts/s, sentence-transformers "
        f"{r['in_process_1_thread']['sentence_transformers']:,.0f} texts/s "
        f"({r['in_process_1_thread']['ratio']:.1f}x).",
        "",
        "| target | measured | pass |",
        "| --- | --- | --- |",
        *[f"| Ray overhead <= 15% vs plain CLI, {c} | {o[c]:+.1%} | {'yes' if o[c] <= 0.15 else 'no'} |" for c in o],
        *[
            f"| sse_np >= 5x sentence-transformers in the same map_batches, {c} | {s[c]:.1f}x (ratio of medians); "
            f"by round: {', '.join(f'{x:.1f}x' for x in r['sse_np_vs_st_on_ray_by_round'][c])} | "
            f"{'yes' if s[c] >= 5 else 'no'} |"
            for c in s
        ],
        "",
        "What bounds the Ray Data ratio: the same pipeline with no model (read_parquet -> write_parquet) runs at "
        f"{r['texts_per_s']['ray data, read + write only']:,.0f} texts/s; with an actor that costs nothing but "
        f"returns the same {r['dim']}-d float32 column, at "
        f"{r['texts_per_s']['ray data, zero-cost model, 1 actor']:,.0f} "
        "texts/s (Ray moves and writes the vectors). So even an encoder that cost nothing would be at most "
        + " / ".join(f"{v:.1f}x" for v in r["ceiling_vs_st_on_ray"].values())
        + " sentence-transformers' pipeline (1 / 2 actors) on these 2 cores.",
        "",
        f"Projection from the measured per-core rate ({p['per_core']:,.0f} texts/s, `--ray` with 1 actor) and the "
        f"2-actor efficiency ({r['two_actor_efficiency']:.0%}): a 16-core node ~{p['per_16_core_node']:,.0f} texts/s; "
        f"16 such nodes ~{p['cluster_16_nodes_x_16_cores']:,.0f} texts/s "
        f"(100M texts in ~{1e8 / p['cluster_16_nodes_x_16_cores']:.0f} s), if storage keeps up: the "
        f"output is {r['dim'] * 4} bytes a text (~{p['cluster_16_nodes_x_16_cores'] * r['dim'] * 4 / 1e9:.1f} GB/s "
        "for the cluster).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

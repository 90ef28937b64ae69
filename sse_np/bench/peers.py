"""``--peers``: the same model in another library, checked to give the same vectors, timed interleaved.

* ``sentence-transformers``: a ``StaticEmbedding`` over the model's table,
  plus a DyT module when the model has one; torch's default threads.
* ``model2vec``: a ``StaticModel`` over the table. It has no DyT head, so a
  model with DyT gives other vectors, and it is refused.

A peer is timed only if its vectors match sse_np's on a sample of the texts
(cosine >= 0.9999 for every text); otherwise it is refused, with the gap.
Each round times sse_np, then the peer, on the same call, and the ratio of
that round is kept: the ratios' median and spread are what is reported.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from ..errors import missing_extra
from .stats import summarize

PEERS = {"sentence-transformers": "sentence_transformers", "model2vec": "model2vec"}
MIN_COSINE = 0.9999


def _import(*names: str) -> Any:
    """The first of ``names`` that imports (a module or ``module:attribute``), typed as Any: optional peers."""
    for name in names:
        module, _, attr = name.partition(":")
        try:
            found = importlib.import_module(module)
            return getattr(found, attr) if attr else found
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"none of {', '.join(names)} imports")


def _encoder_st(model: Any, dim: int) -> Callable[[list[str]], np.ndarray]:
    torch = _import("torch")
    SentenceTransformer = _import("sentence_transformers:SentenceTransformer")
    StaticEmbedding = _import(  # moved in sentence-transformers 6
        "sentence_transformers.sentence_transformer.modules:StaticEmbedding",
        "sentence_transformers.models:StaticEmbedding",
    )
    try:
        STModule = _import("sentence_transformers.base.modules.module:Module")
    except ImportError:  # sentence-transformers < 6 accepts a plain nn.Module
        STModule = torch.nn.Module

    static = StaticEmbedding(model.tokenizer, embedding_weights=model.table.dense())
    modules: list[Any] = [static]
    if model.dyt is not None:
        modules.append(_dyt_module(torch, STModule)(*model.dyt))
    st = SentenceTransformer(modules=modules, device="cpu")
    st.eval()

    def encode(texts: list[str]) -> np.ndarray:
        return st.encode(
            texts,
            batch_size=max(1, len(texts)),
            truncate_dim=dim,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    return encode


def _dyt_module(torch: Any, base: Any) -> Any:
    class DyT(base):
        """``beta * tanh(alpha * x + bias)``, the SSE head."""

        def __init__(self, alpha: np.ndarray, beta: np.ndarray, bias: np.ndarray) -> None:
            super().__init__()
            self.alpha, self.beta, self.bias = (torch.from_numpy(np.array(v, np.float32)) for v in (alpha, beta, bias))

        def forward(self, features: dict, **kwargs: Any) -> dict:
            x = features["sentence_embedding"]
            features["sentence_embedding"] = self.beta * torch.tanh(self.alpha * x + self.bias)
            return features

        def get_embedding_dimension(self) -> int:
            return int(self.alpha.shape[0])

        def save(self, *args: Any, **kwargs: Any) -> None:
            raise NotImplementedError("the bench never saves its peer")

    return DyT


def _encoder_m2v(model: Any, dim: int) -> Callable[[list[str]], np.ndarray]:
    StaticModel = _import("model2vec:StaticModel")
    trunc = model.tokenizer.truncation
    m2v = StaticModel(
        vectors=np.ascontiguousarray(model.table.dense()[:, :dim]),
        tokenizer=model.tokenizer,
        normalize=True,
        max_length=trunc["max_length"] if trunc else None,
    )
    return lambda texts: m2v.encode(texts, batch_size=max(1, len(texts)), use_multiprocessing=False)


def matching(ours: np.ndarray, theirs: np.ndarray) -> float:
    """The lowest cosine between the rows of two sets of vectors (1.0: the same)."""
    a = ours / np.maximum(np.linalg.norm(ours, axis=1, keepdims=True), 1e-12)
    b = theirs / np.maximum(np.linalg.norm(theirs, axis=1, keepdims=True), 1e-12)
    both_zero = (np.linalg.norm(ours, axis=1) == 0) & (np.linalg.norm(theirs, axis=1) == 0)
    return float(np.where(both_zero, 1.0, np.sum(a * b, axis=1)).min())


def _interleaved(ours: Callable[[], Any], theirs: Callable[[], Any], items: int, seconds: float, repeats: int) -> dict:
    mine: list[float] = []
    peer: list[float] = []
    for fn in (ours, theirs):
        fn()  # warm
    per_round = seconds / repeats / 2
    for _ in range(repeats):
        for fn, rates in ((ours, mine), (theirs, peer)):
            calls, t = 0, time.perf_counter()
            while True:
                fn()
                calls += 1
                if time.perf_counter() - t >= per_round:
                    break
            rates.append(items * calls / (time.perf_counter() - t))
    return {"sse_np": summarize(mine), "peer": summarize(peer), "ratio": summarize(a / b for a, b in zip(mine, peer))}


def _each(fn: Callable[[list[str]], Any], batches: list[list[str]]) -> None:
    for batch in batches:
        fn(batch)


def check(names: list[str]) -> None:
    """Refuse an unknown or uninstalled peer before anything is measured."""
    for name in names:
        if name not in PEERS:
            raise ValueError(f"--peers: unknown peer {name!r} (known: {', '.join(PEERS)})")
        if importlib.util.find_spec(PEERS[name]) is None:
            raise missing_extra(f"--peers {name}", "peers")


def compare_peers(
    model: Any, names: list[str], sample: Any, dim: int, seconds: float, repeats: int, step: Callable[[str], None]
) -> dict[str, Any]:
    """Each peer: refused (and why), or its vectors' agreement and the interleaved ratios."""
    out: dict[str, Any] = {}
    probe = sample.short[:200] + sample.documents[:50]
    batches = [sample.short[i : i + 32] for i in range(0, min(len(sample.short), 32 * 16), 32)]
    check(names)
    for name in names:
        encode = (_encoder_st if name == "sentence-transformers" else _encoder_m2v)(model, dim)
        cosine = matching(model.encode(probe, dim), np.asarray(encode(probe), dtype=np.float32))
        if cosine < MIN_COSINE:
            why = f"its vectors differ from sse_np's (lowest cosine {cosine:.4f} < {MIN_COSINE})"
            if name == "model2vec" and model.dyt is not None:
                why += "; model2vec has no DyT head, and this model has one"
            out[name] = {"refused": why}
            step(name)
            continue
        docs = sample.documents
        out[name] = {
            "lowest_cosine": cosine,
            "workloads": {
                f"documents, {len(docs)} in one call": _interleaved(
                    partial(model.encode, docs, dim), partial(encode, docs), len(docs), seconds, repeats
                ),
                "calls of 32": _interleaved(
                    partial(_each, partial(model.encode, dim=dim), batches),
                    partial(_each, encode, batches),
                    32 * len(batches),
                    seconds,
                    repeats,
                ),
            },
        }
        step(name)
    return out

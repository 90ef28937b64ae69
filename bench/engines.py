"""Adapters that give every engine the same small interface.

Each adapter reads the bench checkpoint (``model.safetensors`` with the four
SSE keys + ``tokenizer.json``, or the 4-bit layout) and encodes a list of
texts to L2-normalized float32 vectors of the first ``dim`` dimensions.

How each peer is configured "at its best" is decided here (``variants``)
and, where a knob has no obvious best value, by a short calibration in the
worker that keeps the fastest variant whose output still matches the
reference (see ``bench/worker.py``).
"""

from __future__ import annotations

import importlib.util
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

# semantics: which reference an engine's vectors must match.
#   "sse":    mean -> DyT -> truncate -> L2 (docs/reference/spec.md)
#   "static": StaticEmbedding-style mean -> truncate -> L2, [UNK] dropped (model2vec)
ENGINES: dict[str, dict[str, Any]] = {
    "sse_np": {"label": "sse_np (numba)", "module": "sse_np", "semantics": "sse", "peer": False},
    "sse_np_numpy": {
        "label": "sse_np (pure NumPy)",
        "module": "sse_np",
        "semantics": "sse",
        "peer": False,
        "env": {"SSE_NP_DISABLE_NUMBA": "1"},
    },
    "torch_ref": {"label": "PyTorch reference", "module": "torch", "semantics": "sse", "peer": True},
    "sentence_transformers": {
        "label": "sentence-transformers",
        "module": "sentence_transformers",
        "semantics": "sse",
        "peer": True,
    },
    "static_embed_runner": {
        "label": "static-embed-runner",
        "module": "static_embed_runner",
        "semantics": "sse",
        "peer": True,
    },
    "model2vec": {"label": "model2vec (no DyT)", "module": "model2vec", "semantics": "static", "peer": True},
}
ENGINE_ORDER = list(ENGINES)


def is_installed(name: str) -> bool:
    """Whether the engine's package can be imported in this environment."""
    return importlib.util.find_spec(ENGINES[name]["module"]) is not None


def _sse_params(model_dir: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    from safetensors.numpy import load_file

    tensors = load_file(str(Path(model_dir) / "model.safetensors"))
    return tensors["embedding.weight"], {k: v for k, v in tensors.items() if k.startswith("dyt.")}


class Engine:
    """Base adapter: ``load`` then ``encode`` / ``encode_one``."""

    name = "base"
    search_backend = "numpy"

    def imports(self) -> None:
        """Import the engine's stack (timed separately by the cold-start worker)."""

    def variants(self, threads: int) -> list[dict[str, Any]]:
        """Candidate configurations for a thread budget (first = default)."""
        return [{}]

    def load(self, model: dict[str, Any], layout: str, variant: dict[str, Any]) -> None:
        raise NotImplementedError

    def encode(self, texts: list[str], dim: int) -> np.ndarray:
        raise NotImplementedError

    def encode_one(self, text: str, dim: int) -> np.ndarray:
        return self.encode([text], dim)[0]

    def reset_caches(self) -> None:
        """Forget per-text caches so timed repeats never re-see texts."""

    def describe(self) -> dict[str, Any]:
        """Facts about the loaded configuration, for the report."""
        return {}


class SSENp(Engine):
    """sse_np itself; numba on or off is decided by the process environment."""

    name = "sse_np"

    def imports(self) -> None:
        import sse_np

        self.sse_np = sse_np

    def variants(self, threads):
        # What a user does: tell sse_np the thread budget (tokenizer and kernel);
        # the worker's environment caps NUMBA_NUM_THREADS etc. to the same number.
        return [{"threads": threads}]

    def load(self, model, layout, variant):
        self.model = self.sse_np.load(model[layout], threads=variant.get("threads"))
        if not variant.get("cold"):
            # What a server does at start-up: numba's kernels loaded before the
            # first timed call (the default "auto" backend would answer the
            # first calls on NumPy while they load). Cold-start runs skip it.
            self.model.warmup()

    def encode(self, texts, dim):
        return self.model.encode(texts, dim=dim, batch_size=max(1, len(texts)))

    def encode_one(self, text, dim):
        return self.model.encode(text, dim=dim)

    def reset_caches(self):
        # sse_np remembers the ids of whitespace-separated chunks; the same
        # rule as for every engine: no timed pass profits from earlier passes.
        clear = getattr(self.model, "clear_cache", None)
        if clear is not None:
            clear()

    def describe(self):
        info: dict[str, Any] = {
            "layout": getattr(self.model, "layout", "?"),
            "threads": getattr(self.model, "threads", None),
        }
        try:
            import numba

            info["numba_threads"] = numba.get_num_threads()
        except ImportError:
            info["numba_threads"] = None
        return info


class TorchRef(Engine):
    """The PyTorch reference: tokenizers -> nn.EmbeddingBag(mean) -> DyT -> L2."""

    name = "torch_ref"
    search_backend = "torch"

    def imports(self) -> None:
        import torch
        import torch.nn.functional as F
        from tokenizers import Tokenizer

        self.torch, self.F, self.Tokenizer = torch, F, Tokenizer

    def variants(self, threads):
        # torch's intra-op pool competes with the tokenizers (rayon) pool for
        # the same cores; which split wins is measured, not assumed.
        return [{"torch_threads": t} for t in sorted({1, threads})]

    def load(self, model, layout, variant):
        torch = self.torch
        torch.set_num_threads(int(variant.get("torch_threads", 1)))
        table, dyt = _sse_params(model["full"])
        self.bag = torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(table), mode="mean", freeze=True)
        self.alpha, self.beta, self.bias = (torch.from_numpy(dyt[k]) for k in ("dyt.alpha", "dyt.beta", "dyt.bias"))
        self.tok = self.Tokenizer.from_file(str(Path(model["full"]) / "tokenizer.json"))
        self.tok.no_padding()

    def encode(self, texts, dim):
        torch = self.torch
        ids = [e.ids for e in self.tok.encode_batch(texts, add_special_tokens=False)]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        offsets = np.zeros(len(ids), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        # np.fromiter + from_numpy: the fastest flattening we found (torch.tensor(list) is slower)
        flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        with torch.inference_mode():
            x = self.bag(torch.from_numpy(flat), torch.from_numpy(offsets))
            y = self.beta * torch.tanh(self.alpha * x + self.bias)
            y = self.F.normalize(y[:, :dim], p=2.0, dim=1, eps=1e-12)
        return y.numpy()

    def describe(self):
        return {
            "torch_threads": self.torch.get_num_threads(),
            "torch_interop_threads": self.torch.get_num_interop_threads(),
        }


class STPipeline(Engine):
    """sentence-transformers: StaticEmbedding module + a small DyT module."""

    name = "sentence_transformers"
    search_backend = "torch"

    def imports(self) -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        from tokenizers import Tokenizer

        try:
            from sentence_transformers.sentence_transformer.modules import StaticEmbedding
        except ImportError:  # sentence-transformers < 6
            from sentence_transformers.models import StaticEmbedding
        try:
            from sentence_transformers.base.modules.module import Module as STModule
        except ImportError:  # sentence-transformers < 6 accepts plain nn.Module
            STModule = torch.nn.Module
        self.torch, self.ST, self.StaticEmbedding, self.Tokenizer = (
            torch,
            SentenceTransformer,
            StaticEmbedding,
            Tokenizer,
        )
        self.DyT = _make_dyt_module(torch, STModule)

    def variants(self, threads):
        return [{"torch_threads": t} for t in sorted({1, threads})]

    def load(self, model, layout, variant):
        torch = self.torch
        torch.set_num_threads(int(variant.get("torch_threads", 1)))
        table, dyt = _sse_params(model["full"])
        tok = self.Tokenizer.from_file(str(Path(model["full"]) / "tokenizer.json"))
        static = self.StaticEmbedding(tok, embedding_weights=table)
        dyt_mod = self.DyT(dyt["dyt.alpha"], dyt["dyt.beta"], dyt["dyt.bias"])
        self.model = self.ST(modules=[static, dyt_mod], device="cpu")
        self.model.eval()

    def encode(self, texts, dim):
        return self.model.encode(
            texts,
            batch_size=max(1, len(texts)),
            truncate_dim=dim,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def encode_one(self, text, dim):
        return self.model.encode(
            text, truncate_dim=dim, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    def describe(self):
        return {"torch_threads": self.torch.get_num_threads()}


def _make_dyt_module(torch: Any, base: type) -> type:
    """A sentence-transformers module computing ``beta * tanh(alpha * x + bias)``."""

    class DyT(base):  # type: ignore[misc, valid-type]
        def __init__(self, alpha: np.ndarray, beta: np.ndarray, bias: np.ndarray) -> None:
            super().__init__()
            self.alpha = torch.nn.Parameter(torch.from_numpy(np.array(alpha)), requires_grad=False)
            self.beta = torch.nn.Parameter(torch.from_numpy(np.array(beta)), requires_grad=False)
            self.bias = torch.nn.Parameter(torch.from_numpy(np.array(bias)), requires_grad=False)

        def forward(self, features: dict, **kwargs: Any) -> dict:
            x = features["sentence_embedding"]
            features["sentence_embedding"] = self.beta * torch.tanh(self.alpha * x + self.bias)
            return features

        def get_embedding_dimension(self) -> int:
            return int(self.alpha.shape[0])

        def save(self, *args: Any, **kwargs: Any) -> None:  # never saved by the bench
            raise NotImplementedError

    return DyT


class StaticEmbedRunnerEngine(Engine):
    """static-embed-runner 0.1.0 (numpy-only runner that reads SSE checkpoints).

    Its loader applies DyT only for the 4-bit layout; on the full-precision
    layout it finds ``embedding.weight`` and ignores ``dyt.*``, so the bench
    attaches the DyT head itself (``runner.head``), which its ``encode``
    then applies. Without that its vectors would not be SSE vectors.
    """

    name = "static_embed_runner"

    def imports(self) -> None:
        from static_embed_runner import StaticEmbedRunner

        self.Runner = StaticEmbedRunner

    def variants(self, threads):
        # "lite" = its pure-Python WordPiece with word cache (its default),
        # "rust" = the tokenizers package. Its pooling is a BLAS matmul whose
        # pool competes with rayon's, like torch's. Calibration keeps the
        # fastest combination whose vectors match the reference.
        blas = sorted({1, threads}) if importlib.util.find_spec("threadpoolctl") else [None]
        return [{"tokenizer": t, "blas_threads": b} if b else {"tokenizer": t} for t in ("lite", "rust") for b in blas]

    def load(self, model, layout, variant):
        if variant.get("blas_threads"):
            from threadpoolctl import threadpool_limits

            self._limits = threadpool_limits(limits=int(variant["blas_threads"]), user_api="blas")
        backend = variant.get("tokenizer", "lite")
        if layout == "q4":
            # table="q4": its memory-saving mode, rows decoded on lookup.
            self.runner = self.Runner.load(model["q4"], table=variant.get("table", "q4"), tokenizer_backend=backend)
        else:
            self.runner = self.Runner.load(model["full"], tokenizer_backend=backend)
            _, dyt = _sse_params(model["full"])
            self.runner.head = (dyt["dyt.alpha"], dyt["dyt.beta"], dyt["dyt.bias"])

    def encode(self, texts, dim):
        return self.runner.encode(texts, truncate_dim=dim)

    def reset_caches(self):
        # Its pure-Python tokenizer memoizes every word it has seen; cleared
        # before each timed pass so repeats measure a first sight of the texts
        # (words repeated within a pass still hit the cache).
        tok = self.runner.tokenizer
        for attr in ("_word_cache",):
            cache = getattr(tok, attr, None)
            if isinstance(cache, dict):
                cache.clear()
        model_cache = getattr(getattr(tok, "model", None), "_cache", None)
        if isinstance(model_cache, dict):
            model_cache.clear()

    def encode_one(self, text, dim):
        return self.runner.encode(text, truncate_dim=dim)

    def describe(self):
        r = self.runner
        info = {"tokenizer_backend": r.tokenizer_backend, "table": r.table_storage, "format": r.model_format}
        try:
            from threadpoolctl import threadpool_info

            info["blas_threads"] = [d.get("num_threads") for d in threadpool_info() if d.get("user_api") == "blas"]
        except ImportError:
            pass
        return info


class Model2VecEngine(Engine):
    """model2vec StaticModel over the same table (no DyT: it has no such head).

    One StaticModel per Matryoshka dim over ``table[:, :dim]`` (model2vec's
    own ``dimensionality`` option does the same truncation), ``normalize=True``,
    and ``max_length`` = the tokenizer.json truncation so it tokenizes the
    same tokens as the others. model2vec drops ``[UNK]`` ids by design.
    """

    name = "model2vec"

    def imports(self) -> None:
        from model2vec import StaticModel
        from tokenizers import Tokenizer

        self.StaticModel, self.Tokenizer = StaticModel, Tokenizer

    def load(self, model, layout, variant):
        from bench.data import tokenizer_truncation

        self.table, _ = _sse_params(model["full"])
        self.tok = self.Tokenizer.from_file(str(Path(model["full"]) / "tokenizer.json"))
        self.max_length = tokenizer_truncation(model["full"])
        self.models: dict[int, Any] = {}

    def _model(self, dim: int) -> Any:
        if dim not in self.models:
            self.models[dim] = self.StaticModel(
                vectors=np.ascontiguousarray(self.table[:, :dim]),
                tokenizer=self.tok,
                normalize=True,
                max_length=self.max_length,
            )
        return self.models[dim]

    def encode(self, texts, dim):
        # Its use_multiprocessing (joblib threads over batches) starts above 10k
        # texts per call; the bench's calls are smaller, so it is off.
        return self._model(dim).encode(texts, batch_size=max(1, len(texts)), use_multiprocessing=False)

    def encode_one(self, text, dim):
        return self._model(dim).encode(text, use_multiprocessing=False)

    def describe(self):
        return {"max_length": self.max_length}


_CLASSES = {
    "sse_np": SSENp,
    "sse_np_numpy": SSENp,
    "torch_ref": TorchRef,
    "sentence_transformers": STPipeline,
    "static_embed_runner": StaticEmbedRunnerEngine,
    "model2vec": Model2VecEngine,
}


def make(name: str) -> Engine:
    """Instantiate the adapter of engine ``name`` (imports nothing yet)."""
    eng = _CLASSES[name]()
    eng.name = name
    return eng


# ------------------------------------------------------------- reference
class Reference:
    """Plain-numpy implementation of docs/reference/spec.md, the yardstick for parity checks."""

    def __init__(self, model_dir: str) -> None:
        from tokenizers import Tokenizer

        self.table, dyt = _sse_params(model_dir)
        self.alpha, self.beta, self.bias = dyt["dyt.alpha"], dyt["dyt.beta"], dyt["dyt.bias"]
        self.tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self.tok.no_padding()
        self.unk = self.tok.token_to_id("[UNK]")

    def encode(self, texts: list[str], dim: int, semantics: str = "sse") -> np.ndarray:
        """Reference vectors; ``semantics="static"`` = no DyT, [UNK] dropped."""
        out = np.zeros((len(texts), self.table.shape[1]), dtype=np.float64)
        for i, enc in enumerate(self.tok.encode_batch(texts, add_special_tokens=False)):
            ids = enc.ids
            if semantics == "static":
                ids = [t for t in ids if t != self.unk]
            if ids:
                out[i] = self.table[ids].astype(np.float64).mean(axis=0)
        if semantics == "sse":
            out = self.beta * np.tanh(self.alpha * out + self.bias)
        out = out[:, :dim]
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

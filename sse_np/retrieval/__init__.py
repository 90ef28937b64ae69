"""Array-level retrieval math, no model: similarity, output quantization, exact search.

* :mod:`~sse_np.retrieval.similarity`   -- cosine similarity (``cos_sim``, ``pairwise_cos_sim``);
* :mod:`~sse_np.retrieval.quantization` -- int8/uint8/binary codes, as sentence-transformers makes them;
* :mod:`~sse_np.retrieval.topk`         -- exact inner-product top-k over float and int8 corpora;
* :mod:`~sse_np.retrieval.hamming`      -- exact Hamming top-k over packed bits;
* :mod:`~sse_np.retrieval.search`       -- :func:`semantic_search`, with rescoring;
* :mod:`~sse_np.retrieval.kernels`      -- their numba kernels, loaded by :mod:`~sse_np.retrieval.jit`.
"""

from __future__ import annotations

from .hamming import hamming_top_k
from .quantization import quantize_embeddings
from .search import semantic_search
from .similarity import similarity, similarity_pairwise
from .topk import top_k

__all__ = ["hamming_top_k", "quantize_embeddings", "semantic_search", "similarity", "similarity_pairwise", "top_k"]

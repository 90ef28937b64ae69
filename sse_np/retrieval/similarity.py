"""Cosine similarity, as sentence-transformers' ``cos_sim`` and ``pairwise_cos_sim``."""

from __future__ import annotations

import numpy as np

__all__ = ["similarity", "similarity_pairwise"]


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity matrix, as ``sentence_transformers.util.cos_sim``.

    Parameters
    ----------
    a : ndarray (n, d) or (d,)
    b : ndarray (m, d) or (d,)

    Returns
    -------
    ndarray float32, shape (n, m) (1-D inputs count as one row)
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float32))
    b = np.atleast_2d(np.asarray(b, dtype=np.float32))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"similarity needs (n, d) and (m, d) arrays with the same d, got {a.shape} and {b.shape}")
    eps = np.float32(1e-12)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), eps)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), eps)
    return a @ b.T


def similarity_pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``a`` with the same row of ``b``, as
    ``sentence_transformers.util.pairwise_cos_sim``.

    Parameters
    ----------
    a, b : ndarray (n, d) (1-D inputs count as one row)

    Returns
    -------
    ndarray float32, shape (n,)
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float32))
    b = np.atleast_2d(np.asarray(b, dtype=np.float32))
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"similarity_pairwise needs two (n, d) arrays of the same shape, got {a.shape} and {b.shape}")
    eps = np.float32(1e-12)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), eps)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), eps)
    return np.einsum("ij,ij->i", a, b)

"""The numba kernels of hybrid ranking give NumPy's fusion and top-k: same positions, scores to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest

from sse_np.retrieval import fusion
from sse_np.retrieval.fusion import SCAN_MAX_K, convex_fusion, scan_top_k, zscore, zscore_fusion_top_k

pytest.importorskip("numba")
pytestmark = pytest.mark.skipif(fusion._kernels() is None, reason="numba JIT disabled")


def _numpy_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = sorted(range(scores.shape[0]), key=lambda i: (-scores[i], i))[:k]
    return np.array(order), scores[order]


def _cases(rng: np.random.Generator):
    for _ in range(40):
        n = int(rng.integers(1, 400))
        dense = (rng.standard_normal(n) * 0.2).astype(np.float32)
        lexical = np.zeros(n, dtype=np.float32)  # BM25: most documents score 0
        hit = rng.random(n) < 0.1
        lexical[hit] = rng.integers(1, 4, size=int(hit.sum())).astype(np.float32)  # ties among the hits
        yield dense, lexical, int(rng.integers(1, SCAN_MAX_K + 1))
    tied = np.repeat(np.float32([0.5, 0.1]), 50)
    yield tied, tied.copy(), 10  # identical documents: equal fused scores, the lower position first
    yield np.full(30, 0.3, np.float32), np.arange(30, dtype=np.float32), 5  # dense has no spread
    yield np.linspace(0, 1, 30, dtype=np.float32), np.zeros(30, np.float32), 7  # no word matched


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.5, 1.0])
def test_zscore_fusion_equals_numpy(weight):
    for dense, lexical, k in _cases(np.random.default_rng(7)):
        want_i, want_s = _numpy_top_k(convex_fusion(zscore(dense), zscore(lexical), weight), k)
        got = zscore_fusion_top_k(dense, lexical, weight, k)
        assert got is not None
        assert got[0].tolist() == want_i.tolist()
        np.testing.assert_allclose(got[1], want_s, rtol=1e-9, atol=1e-9)


def test_scan_top_k_equals_numpy():
    rng = np.random.default_rng(3)
    for dense, lexical, k in _cases(rng):
        for scores in (dense, lexical, lexical.astype(np.float64)):
            got = scan_top_k(scores, k)
            assert got is not None
            want_i, want_s = _numpy_top_k(scores, k)
            assert got[0].tolist() == want_i.tolist() and got[1].tolist() == want_s.astype(np.float64).tolist()


def test_large_k_and_no_numba_fall_back_to_numpy(monkeypatch):
    scores = np.arange(200, dtype=np.float32)
    assert scan_top_k(scores, SCAN_MAX_K + 1) is None
    assert zscore_fusion_top_k(scores, scores, 0.5, SCAN_MAX_K + 1) is None
    with pytest.raises(ValueError, match="dense weight"):
        zscore_fusion_top_k(scores, scores, 1.5, 3)
    monkeypatch.setattr(fusion, "_loaded", False)  # as without numba / under NUMBA_DISABLE_JIT
    assert scan_top_k(scores, 3) is None and zscore_fusion_top_k(scores, scores, 0.5, 3) is None

"""sse_np.retrieval: exact against brute force, sentence-transformers' result format, binary + rescore recipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sse_np.retrieval import hamming_top_k, semantic_search, top_k
from sse_np.retrieval.quantization import quantization_ranges, quantize_embeddings


def _brute_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Higher score first, then lower index (lexsort over the whole row)."""
    idx = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    order = np.lexsort((idx, -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _hamming_brute(q: np.ndarray, d: np.ndarray, dim: int) -> np.ndarray:
    """Hamming distances from unpacked bits (independent of the packed popcount)."""
    qb = np.unpackbits(q.view(np.uint8), axis=1, count=dim).astype(np.int64)
    db = np.unpackbits(d.view(np.uint8), axis=1, count=dim).astype(np.int64)
    return (qb[:, None, :] != db[None, :, :]).sum(-1)


# --------------------------------------------------------------------------- float


@pytest.fixture(params=["numba", "numpy"])
def selection(request, monkeypatch) -> str:
    """Run a test with the numba merge kernel and with the NumPy selection."""
    import sse_np.retrieval.jit as jit

    if request.param == "numba":
        if not jit.get_kernels():
            pytest.skip("numba not available")
    else:
        monkeypatch.setattr(jit, "_kernels", False)
    return request.param


@pytest.mark.parametrize("blocks", [(1024, 8192), (3, 7), (1, 1), (5, 64)])
def test_top_k_exact_with_ties(blocks: tuple[int, int], selection: str) -> None:
    rng = np.random.default_rng(0)
    # Coarse values make many exactly equal scores (ties across block borders).
    docs = rng.integers(-2, 3, size=(300, 8)).astype(np.float32)
    queries = rng.integers(-2, 3, size=(23, 8)).astype(np.float32)
    full = queries @ docs.T
    for k in (1, 10, 299, 300, 500) if blocks[1] > 1 else (1, 30):
        scores, index = top_k(queries, docs, k, query_block=blocks[0], doc_block=blocks[1])
        ref_s, ref_i = _brute_top_k(full, min(k, 300))
        np.testing.assert_array_equal(index, ref_i)
        np.testing.assert_array_equal(scores, ref_s)
        assert scores.dtype == np.float32 and index.dtype == np.int64


def test_top_k_normalize_docs_and_views(selection: str) -> None:
    rng = np.random.default_rng(1)
    big = rng.standard_normal((1000, 64)).astype(np.float32) * rng.uniform(0.1, 5, (1000, 1)).astype(np.float32)
    queries = _unit(rng, 40, 32)
    docs = big[:, :32]  # non-contiguous Matryoshka view
    scores, index = top_k(queries, docs, 10, normalize_docs=True, doc_block=100)
    unit_docs = docs / np.linalg.norm(docs, axis=1, keepdims=True)
    ref_s, ref_i = _brute_top_k(queries @ unit_docs.T, 10)
    np.testing.assert_array_equal(index, ref_i)
    np.testing.assert_allclose(scores, ref_s, atol=1e-6)


def test_top_k_is_the_evaluation_search() -> None:
    """One implementation: the evaluation ranks with sse_np.retrieval.topk.top_k."""
    import sse_np.eval
    import sse_np.eval.runner

    assert sse_np.eval.exact_top_k is top_k and sse_np.eval.runner.exact_top_k is top_k


def test_semantic_search_float_matches_sentence_transformers() -> None:
    torch = pytest.importorskip("torch")
    st_util = pytest.importorskip("sentence_transformers.util")
    rng = np.random.default_rng(3)
    corpus = rng.standard_normal((2000, 64)).astype(np.float32)
    queries = rng.standard_normal((30, 64)).astype(np.float32)
    for ours_fn, st_fn in ((None, st_util.cos_sim), ("dot", st_util.dot_score), (st_util.cos_sim, st_util.cos_sim)):
        ours = semantic_search(queries, corpus, top_k=7, score_function=ours_fn)
        ref = st_util.semantic_search(
            torch.from_numpy(queries), torch.from_numpy(corpus), top_k=7, score_function=st_fn
        )
        assert len(ours) == len(ref) == 30
        for a, b in zip(ours, ref):
            assert [h["corpus_id"] for h in a] == [h["corpus_id"] for h in b]
            assert all(type(h["corpus_id"]) is int and type(h["score"]) is float for h in a)
            assert set(a[0]) == set(b[0]) == {"corpus_id", "score"}
            np.testing.assert_allclose([h["score"] for h in a], [h["score"] for h in b], rtol=1e-5, atol=1e-5)
    # one 1-D query -> one result list; corpus smaller than top_k -> all of it
    one = semantic_search(queries[0], corpus[:5], top_k=10)
    ref = st_util.semantic_search(torch.from_numpy(queries[0]), torch.from_numpy(corpus[:5]), top_k=10)
    assert [h["corpus_id"] for h in one[0]] == [h["corpus_id"] for h in ref[0]] and len(one) == 1
    assert semantic_search(queries, corpus[:0], top_k=3) == [[] for _ in range(30)]


def test_semantic_search_custom_score_function_and_memmap(tmp_path) -> None:
    rng = np.random.default_rng(4)
    corpus = rng.standard_normal((500, 16)).astype(np.float32)
    queries = rng.standard_normal((9, 16)).astype(np.float32)

    def neg_l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return -np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)

    res = semantic_search(queries, corpus, top_k=5, score_function=neg_l2, corpus_chunk_size=64)
    _ref_s, ref_i = _brute_top_k(neg_l2(queries, corpus), 5)
    assert [[h["corpus_id"] for h in r] for r in res] == ref_i.tolist()
    path = tmp_path / "corpus.npy"
    np.save(path, corpus)
    mm = np.load(path, mmap_mode="r")
    # the same chunking on both sides: a BLAS product's last bit may depend on the block shape
    assert semantic_search(queries, mm, top_k=5, corpus_chunk_size=100) == semantic_search(
        queries, corpus, top_k=5, corpus_chunk_size=100
    )
    # packed codes from a memory map, and from an unaligned view (copied to words chunk by chunk)
    codes = quantize_embeddings(np.repeat(corpus, 4, axis=1), "ubinary")  # 64 bits = 8 bytes per row
    np.save(tmp_path / "codes.npy", codes)
    q64 = np.repeat(queries, 4, axis=1)
    expected = semantic_search(q64, codes, top_k=5)
    assert semantic_search(q64, np.load(tmp_path / "codes.npy", mmap_mode="r"), top_k=5) == expected
    raw = np.zeros(codes.size + 1, dtype=np.uint8)
    unaligned = raw[1:].reshape(codes.shape)
    unaligned[:] = codes
    assert unaligned.ctypes.data % 8 != 0
    assert semantic_search(q64, unaligned, top_k=5) == expected


# --------------------------------------------------------------------------- binary


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("dim", [3, 8, 21, 64, 100, 256])
@pytest.mark.parametrize("precision", ["binary", "ubinary"])
def test_hamming_top_k_against_unpacked_bits(backend: str, dim: int, precision: str) -> None:
    if backend == "numba":
        pytest.importorskip("numba")
    rng = np.random.default_rng(dim)
    docs = quantize_embeddings(rng.standard_normal((1500, dim)), precision)
    queries = quantize_embeddings(rng.standard_normal((13, dim)), precision)
    full = _hamming_brute(queries, docs, dim)
    for k, doc_block in ((1, 1024), (40, 1024), (1500, 1024), (2000, 100), (40, 100), (40, 7)):
        dist, index = hamming_top_k(queries, docs, k, backend=backend, doc_block=doc_block)
        ref_s, ref_i = _brute_top_k(-full, min(k, 1500))  # smaller distance first, ties by index
        np.testing.assert_array_equal(index, ref_i)
        np.testing.assert_array_equal(dist, -ref_s)
        assert dist.dtype == np.int32 and index.dtype == np.int64
        one_thread = hamming_top_k(queries, docs, k, backend=backend, doc_block=doc_block, threads=1)
        np.testing.assert_array_equal(one_thread[1], index)  # ranges of queries on threads: same answer
        # few queries take the fused row scan, many the transposed blocks: same answer
        few_dist, few_index = hamming_top_k(queries[:2], docs, k, backend=backend, doc_block=doc_block)
        np.testing.assert_array_equal(few_index, ref_i[:2])
        np.testing.assert_array_equal(few_dist, -ref_s[:2])


def test_hamming_backends_without_numba_jit() -> None:
    """The search runs (same results) with numba's JIT disabled, numba switched off, or numba missing."""
    code = (
        "import sys, json, numpy as np\n"
        "if sys.argv[1] == 'missing': sys.modules['numba'] = None\n"
        "from sse_np.retrieval import hamming_top_k, semantic_search\n"
        "from sse_np.retrieval.quantization import quantize_embeddings\n"
        "rng = np.random.default_rng(0)\n"
        "d = quantize_embeddings(rng.standard_normal((700, 50)), 'ubinary')\n"
        "q = rng.standard_normal((5, 50)).astype(np.float32)\n"
        "dist, idx = hamming_top_k(quantize_embeddings(q, 'ubinary'), d, 9)\n"
        "r = semantic_search(q, d, top_k=3)\n"
        "print(json.dumps([dist.tolist(), idx.tolist(), r]))\n"
    )
    outs = []
    for mode, env in (
        ("jit", {}),
        ("nojit", {"NUMBA_DISABLE_JIT": "1"}),
        ("off", {"SSE_NP_DISABLE_NUMBA": "1"}),
        ("missing", {}),
    ):
        proc = subprocess.run(
            [sys.executable, "-c", code, mode], capture_output=True, text=True, timeout=300, env={**os.environ, **env}
        )
        assert proc.returncode == 0, proc.stderr
        outs.append(json.loads(proc.stdout))
    assert all(o == outs[0] for o in outs[1:])


def test_binary_without_rescore_scores_are_sign_cosines() -> None:
    rng = np.random.default_rng(5)
    dim = 40
    corpus_f = rng.standard_normal((300, dim)).astype(np.float32)
    queries = rng.standard_normal((4, dim)).astype(np.float32)
    corpus = quantize_embeddings(corpus_f, "binary")
    res = semantic_search(queries, corpus, top_k=6, rescore=False)
    signs_q, signs_d = np.where(queries > 0, 1.0, -1.0), np.where(corpus_f > 0, 1.0, -1.0)
    cos = signs_q @ signs_d.T / dim
    ref_s, ref_i = _brute_top_k(cos, 6)
    assert [[h["corpus_id"] for h in r] for r in res] == ref_i.tolist()
    np.testing.assert_allclose([[h["score"] for h in r] for r in res], ref_s, atol=1e-12)
    # already-quantized queries: the same search, no rescoring
    assert semantic_search(quantize_embeddings(queries, "binary"), corpus, top_k=6, corpus_precision="binary") == res


@pytest.mark.parametrize("precision", ["binary", "ubinary"])
def test_binary_rescore_recipe(precision: str) -> None:
    rng = np.random.default_rng(6)
    dim, k, r = 60, 5, 3
    corpus_f = _unit(rng, 800, dim)
    queries = _unit(rng, 12, dim)
    corpus = quantize_embeddings(corpus_f, precision)
    ham = _hamming_brute(quantize_embeddings(queries, precision), corpus, dim)
    _, cand = _brute_top_k(-ham, k * r)
    bits = (corpus_f > 0).astype(np.float64)  # the sign bits, whatever the packing

    def expected(doc_vectors: np.ndarray) -> tuple[list, list]:
        ids, scores = [], []
        for qi in range(len(queries)):
            s = doc_vectors[cand[qi]] @ queries[qi].astype(np.float64)
            order = np.lexsort((cand[qi], -s))[:k]
            ids.append(cand[qi][order].tolist())
            scores.append(s[order].tolist())
        return ids, scores

    # default: float query . 0/1 bits of the candidates, as semantic_search_faiss rescores
    res = semantic_search(queries, corpus, top_k=k, rescore_multiplier=r)
    ids, scores = expected(bits)
    assert [[h["corpus_id"] for h in x] for x in res] == ids
    np.testing.assert_allclose([[h["score"] for h in x] for x in res], scores, rtol=1e-12, atol=1e-12)
    # rescoring against float documents (cosine) and int8 documents (dequantized dot)
    res = semantic_search(queries, corpus, top_k=k, rescore_multiplier=r, rescore_embeddings=corpus_f)
    ids, scores = expected(corpus_f.astype(np.float64))
    assert [[h["corpus_id"] for h in x] for x in res] == ids
    np.testing.assert_allclose([[h["score"] for h in x] for x in res], scores, atol=1e-6)
    ranges = quantization_ranges(corpus_f)
    codes = quantize_embeddings(corpus_f, "int8", ranges=ranges)
    res = semantic_search(queries, corpus, top_k=k, rescore_multiplier=r, rescore_embeddings=codes, ranges=ranges)
    steps = (ranges[1] - ranges[0]).astype(np.float32) / 255
    deq = (codes.astype(np.float64) + 128) * steps + ranges[0].astype(np.float32)
    ids, scores = expected(deq)
    assert [[h["corpus_id"] for h in x] for x in res] == ids
    np.testing.assert_allclose([[h["score"] for h in x] for x in res], scores, rtol=1e-12, atol=1e-12)


def test_binary_rescore_matches_sentence_transformers_faiss() -> None:
    """With every document a candidate (k * r >= n), the rescored ranking is sentence-transformers' own."""
    pytest.importorskip("faiss")
    st_q = pytest.importorskip("sentence_transformers.util.quantization")
    rng = np.random.default_rng(7)
    corpus_f, queries = _unit(rng, 200, 64), _unit(rng, 6, 64)
    corpus = quantize_embeddings(corpus_f, "ubinary")
    ours = semantic_search(queries, corpus, top_k=10, rescore_multiplier=20)
    ref, _ = st_q.semantic_search_faiss(
        queries, corpus_embeddings=corpus, corpus_precision="ubinary", top_k=10, rescore_multiplier=20
    )
    for a, b in zip(ours, ref):
        assert [h["corpus_id"] for h in a] == [h["corpus_id"] for h in b]
        np.testing.assert_allclose([h["score"] for h in a], [h["score"] for h in b], rtol=1e-6)


# --------------------------------------------------------------------------- int8 / uint8


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_scalar_corpus_search_and_rescore(precision: str, selection: str) -> None:
    rng = np.random.default_rng(8)
    dim, k, r = 32, 4, 5
    corpus_f, queries = _unit(rng, 600, dim), _unit(rng, 10, dim)
    calib = _unit(rng, 1000, dim)
    ranges = quantization_ranges(calib)
    corpus = quantize_embeddings(corpus_f, precision, ranges=ranges)
    q_codes = quantize_embeddings(queries, precision, ranges=ranges)
    int_scores = q_codes.astype(np.int64) @ corpus.astype(np.int64).T
    res = semantic_search(queries, corpus, top_k=k, rescore=False, ranges=ranges, corpus_chunk_size=50)
    ref_s, ref_i = _brute_top_k(int_scores, k)
    assert [[h["corpus_id"] for h in x] for x in res] == ref_i.tolist()
    assert [[h["score"] for h in x] for x in res] == ref_s.astype(float).tolist()
    # calibration_embeddings give the same ranges
    assert semantic_search(queries, corpus, top_k=k, rescore=False, calibration_embeddings=calib) == res
    # few queries are scored straight from the codes (numba): the same exact integers
    assert semantic_search(queries[:2], corpus, top_k=k, rescore=False, ranges=ranges, corpus_chunk_size=50) == res[:2]
    # rescored: float query . dequantized candidates
    res = semantic_search(queries, corpus, top_k=k, rescore_multiplier=r, ranges=ranges)
    _, cand = _brute_top_k(int_scores, k * r)
    deq = (corpus.astype(np.float64) + (128 if precision == "int8" else 0)) * (
        (ranges[1] - ranges[0]).astype(np.float32) / 255
    ) + ranges[0].astype(np.float32)
    for qi, hits in enumerate(res):
        s = deq[cand[qi]] @ queries[qi].astype(np.float64)
        order = np.lexsort((cand[qi], -s))[:k]
        assert [h["corpus_id"] for h in hits] == cand[qi][order].tolist()
        np.testing.assert_allclose([h["score"] for h in hits], s[order], rtol=1e-12)


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_asymmetric_scalar_search(precision: str, selection: str) -> None:
    rng = np.random.default_rng(12)
    corpus_f, queries = _unit(rng, 700, 24), _unit(rng, 8, 24)
    ranges = quantization_ranges(corpus_f)
    corpus = quantize_embeddings(corpus_f, precision, ranges=ranges)
    steps = (ranges[1] - ranges[0]).astype(np.float32) / 255
    deq = (corpus.astype(np.float64) + (128 if precision == "int8" else 0)) * steps + ranges[0].astype(np.float32)
    exact = queries.astype(np.float64) @ deq.T
    res = semantic_search(queries, corpus, top_k=7, ranges=ranges, asymmetric=True, corpus_chunk_size=100)
    ref_s, ref_i = _brute_top_k(exact, 7)
    assert [[h["corpus_id"] for h in x] for x in res] == ref_i.tolist()
    np.testing.assert_allclose([[h["score"] for h in x] for x in res], ref_s, atol=1e-5)
    one = semantic_search(queries[3], corpus, top_k=7, ranges=ranges, asymmetric=True)  # direct from the codes
    assert [h["corpus_id"] for h in one[0]] == ref_i[3].tolist()
    np.testing.assert_allclose([h["score"] for h in one[0]], ref_s[3], atol=1e-5)
    # the same ranking as rescoring every document
    assert [[h["corpus_id"] for h in x] for x in res] == [
        [h["corpus_id"] for h in x]
        for x in semantic_search(queries, corpus, top_k=7, ranges=ranges, rescore_multiplier=100)
    ]
    with pytest.raises(ValueError, match="asymmetric=True needs an int8/uint8 corpus"):
        semantic_search(queries, quantize_embeddings(corpus_f, "binary"), asymmetric=True)


def test_large_int_dot_products_stay_exact(selection: str) -> None:
    """uint8 codes at dim 1024 overflow float32's exact integers; the search widens to float64."""
    rng = np.random.default_rng(9)
    corpus = rng.integers(200, 256, size=(50, 1024)).astype(np.uint8)
    queries = rng.integers(200, 256, size=(3, 1024)).astype(np.uint8)
    res = semantic_search(queries, corpus, top_k=50, corpus_precision="uint8")
    exact = queries.astype(np.int64) @ corpus.astype(np.int64).T
    ref_s, ref_i = _brute_top_k(exact, 50)
    assert [[h["corpus_id"] for h in x] for x in res] == ref_i.tolist()
    assert [[int(h["score"]) for h in x] for x in res] == ref_s.tolist()


def test_errors_name_the_problem() -> None:
    rng = np.random.default_rng(10)
    corpus_f, queries = _unit(rng, 20, 16), _unit(rng, 3, 16)
    with pytest.raises(ValueError, match="queries have dim 8, corpus has dim 16"):
        semantic_search(queries[:, :8], corpus_f)
    with pytest.raises(ValueError, match="top_k must be a positive int"):
        semantic_search(queries, corpus_f, top_k=0)
    with pytest.raises(ValueError, match="precision must be one of"):
        semantic_search(queries, corpus_f, corpus_precision="float16")
    codes = quantize_embeddings(corpus_f, "int8")
    with pytest.raises(ValueError, match="needs the ranges="):
        semantic_search(queries, codes)
    with pytest.raises(TypeError, match="needs a float corpus, got int8"):
        semantic_search(queries, codes, corpus_precision="float32")
    with pytest.raises(ValueError, match="cannot tell"):
        semantic_search(quantize_embeddings(queries, "binary"), quantize_embeddings(corpus_f, "binary"))
    with pytest.raises(ValueError, match=r"width 5 does not match queries of dim 16 \(expected width 2\)"):
        semantic_search(queries, quantize_embeddings(_unit(rng, 20, 40), "binary"), corpus_precision="binary")
    with pytest.raises(TypeError, match="ubinary corpus must be uint8, got int8"):
        semantic_search(queries, quantize_embeddings(corpus_f, "binary"), corpus_precision="ubinary")
    with pytest.raises(ValueError, match="rescore_embeddings has 5 rows, corpus has 20"):
        semantic_search(queries, quantize_embeddings(corpus_f, "binary"), rescore_embeddings=corpus_f[:5])
    with pytest.raises(ValueError, match="custom score_function works on float corpora only"):
        semantic_search(queries, quantize_embeddings(corpus_f, "binary"), score_function=lambda a, b: a @ b.T)
    with pytest.raises(ValueError, match="shape mismatch"):
        hamming_top_k(np.zeros((1, 4), np.uint8), np.zeros((5, 3), np.uint8))
    with pytest.raises(ValueError, match="backend must be"):
        hamming_top_k(np.zeros((1, 4), np.uint8), np.zeros((5, 4), np.uint8), backend="gpu")

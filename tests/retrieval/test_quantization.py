"""sse_np.retrieval.quantization against sentence-transformers' own quantize_embeddings, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from sse_np.retrieval.quantization import (
    PRECISIONS,
    bytes_per_vector,
    dequantize_embeddings,
    hamming_distances,
    popcount,
    quantization_ranges,
    quantize_embeddings,
    to_ubinary,
    unpack_bits,
)

st_util = pytest.importorskip("sentence_transformers.util", reason="needs the test extra (sentence-transformers)")
st_quantize = st_util.quantize_embeddings

DIMS = [1, 7, 8, 13, 64, 100, 256, 257]


def _same(ours: np.ndarray, ref: np.ndarray) -> None:
    assert isinstance(ours, np.ndarray)
    assert ours.dtype == ref.dtype, (ours.dtype, ref.dtype)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    assert ours.tobytes() == ref.tobytes()


@pytest.fixture(scope="module")
def real_vectors() -> np.ndarray:
    """Unit vectors of the default model on real-ish texts (512-d, float32)."""
    import sse_np

    model = sse_np.load(sse_np.default_model_path(), backend="numpy")
    rng = np.random.default_rng(3)
    words = "the cell protein gene study of patients with cancer risk and blood pressure in mice data".split()
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 30))) for _ in range(400)]
    texts += ["", "a", "Aspirin lowers the risk of heart attack.", "東京 café naïve 🙂"]
    return model.encode(texts)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("dim", DIMS)
def test_random_vectors_match_sentence_transformers(precision: str, dim: int) -> None:
    rng = np.random.default_rng(dim)
    emb = rng.standard_normal((50, dim)).astype(np.float32)
    emb[3, :] = 0.0  # exact zeros: the sign bit is "> 0", not ">= 0"
    _same(quantize_embeddings(emb, precision), st_quantize(emb, precision))
    # 1-D input (one vector); int8 needs explicit ranges then
    if not precision.endswith("int8"):
        _same(quantize_embeddings(emb[0], precision), st_quantize(emb[0], precision))


@pytest.mark.parametrize("precision", ["int8", "uint8"])
@pytest.mark.parametrize("dim", [7, 64, 257])
def test_ranges_and_calibration_match_sentence_transformers(precision: str, dim: int) -> None:
    rng = np.random.default_rng(100 + dim)
    emb = rng.standard_normal((40, dim)).astype(np.float32)
    calib = rng.standard_normal((300, dim)).astype(np.float32) * 0.8
    ranges = np.vstack([calib.min(0), calib.max(0)])
    ranges[:, 0] = 0.5  # a zero-width range (step 1 in both)
    for kwargs in ({"ranges": ranges}, {"calibration_embeddings": calib}, {"ranges": ranges.astype(np.float64)}):
        _same(quantize_embeddings(emb, precision, **kwargs), st_quantize(emb, precision, **kwargs))
    # values outside the calibrated range are clipped, one vector works with ranges
    _same(quantize_embeddings(emb * 3, precision, ranges=ranges), st_quantize(emb * 3, precision, ranges=ranges))
    _same(quantize_embeddings(emb[0], precision, ranges=ranges), st_quantize(emb[0], precision, ranges=ranges))
    _same(quantization_ranges(emb, calib), st_util.quantization._get_quantization_ranges(emb, precision, calib))


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
@pytest.mark.parametrize("precision", PRECISIONS)
def test_other_float_dtypes_match(dtype: type, precision: str) -> None:
    emb = np.random.default_rng(9).standard_normal((30, 20)).astype(dtype)
    _same(quantize_embeddings(emb, precision), st_quantize(emb, precision))


@pytest.mark.parametrize("precision", PRECISIONS)
def test_real_model_vectors_match(real_vectors: np.ndarray, precision: str) -> None:
    for dim in (512, 256, 64, 33):
        emb = np.ascontiguousarray(real_vectors[:, :dim])
        _same(quantize_embeddings(emb, precision), st_quantize(emb, precision))
        if precision.endswith("int8"):
            calib, rest = emb[:200], emb[200:]
            _same(
                quantize_embeddings(rest, precision, calibration_embeddings=calib),
                st_quantize(rest, precision, calibration_embeddings=calib),
            )


@pytest.mark.parametrize("precision", PRECISIONS)
def test_empty_and_lists_match(precision: str) -> None:
    rng = np.random.default_rng(5)
    _same(
        quantize_embeddings(np.zeros((0, 12), np.float32), precision),
        st_quantize(np.zeros((0, 12), np.float32), precision),
    )
    rows = [rng.standard_normal(12).astype(np.float32) for _ in range(5)]
    _same(quantize_embeddings(rows, precision), st_quantize(rows, precision))
    mats = [rng.standard_normal((n, 12)).astype(np.float32) for n in (3, 1, 6)]
    ours, ref = quantize_embeddings(mats, precision), st_quantize(mats, precision)
    assert len(ours) == len(ref) == 3
    for a, b in zip(ours, ref):
        _same(a, b)
    assert quantize_embeddings([], precision) == []


def test_validation_errors() -> None:
    emb = np.random.default_rng(0).standard_normal((10, 16)).astype(np.float32)
    with pytest.raises(ValueError, match=r"precision must be one of.*'int4'"):
        quantize_embeddings(emb, "int4")
    with pytest.raises(ValueError, match="precision must be one of"):
        quantize_embeddings(emb, "xint8")  # sentence-transformers matches on the suffix; we refuse up front
    with pytest.raises(TypeError, match="must be float, got int8"):
        quantize_embeddings(quantize_embeddings(emb, "int8"), "binary")
    with pytest.raises(TypeError, match="numeric"):
        quantize_embeddings(np.array([["a", "b"]]), "binary")
    with pytest.raises(ValueError, match=r"1-D \(dim,\) or 2-D"):
        quantize_embeddings(emb.reshape(2, 5, 16), "binary")
    with pytest.raises(ValueError, match=r"ranges must have shape \(2, 16\).*\(2, 15\)"):
        quantize_embeddings(emb, "int8", ranges=np.zeros((2, 15)))
    with pytest.raises(ValueError, match=r"calibration_embeddings must have shape \(m, 16\)"):
        quantize_embeddings(emb, "uint8", calibration_embeddings=np.zeros((4, 8)))
    with pytest.raises(ValueError, match="single embedding"):
        quantize_embeddings(emb[0], "int8")
    with pytest.raises(ValueError, match="single embedding"):
        quantize_embeddings(emb[:1], "uint8")


def test_bytes_per_vector() -> None:
    assert bytes_per_vector(256, "float32") == 1024
    assert bytes_per_vector(256, "int8") == bytes_per_vector(256, "uint8") == 256
    assert bytes_per_vector(256, "binary") == bytes_per_vector(256, "ubinary") == 32
    assert bytes_per_vector(257, "ubinary") == 33
    for dim in DIMS:
        for p in PRECISIONS:
            codes = quantize_embeddings(np.ones((2, dim), np.float32), p, ranges=np.zeros((2, dim)))
            assert codes.nbytes == 2 * bytes_per_vector(dim, p)
    with pytest.raises(ValueError, match="precision"):
        bytes_per_vector(8, "fp16")
    with pytest.raises(ValueError, match="dim must be a positive int"):
        bytes_per_vector(0, "int8")


def test_unpack_and_hamming_against_bit_loops() -> None:
    rng = np.random.default_rng(11)
    dim = 21
    a = rng.standard_normal((6, dim)).astype(np.float32)
    b = rng.standard_normal((9, dim)).astype(np.float32)
    ua, ub = quantize_embeddings(a, "ubinary"), quantize_embeddings(b, "ubinary")
    sa = quantize_embeddings(a, "binary")
    np.testing.assert_array_equal(to_ubinary(sa), ua)
    np.testing.assert_array_equal(unpack_bits(ua, dim), (a > 0).astype(np.uint8))
    np.testing.assert_array_equal(unpack_bits(sa, dim, signed=True), np.where(a > 0, 1, -1))
    expected = np.array([[sum((x > 0) != (y > 0)) for y in b] for x in a])
    np.testing.assert_array_equal(hamming_distances(ua, ub), expected)
    np.testing.assert_array_equal(hamming_distances(sa, quantize_embeddings(b, "binary")), expected)
    with pytest.raises(ValueError, match="does not fit"):
        unpack_bits(ua, 30)
    with pytest.raises(TypeError, match=r"int8 .* or uint8"):
        to_ubinary(a)
    words = rng.integers(0, 2**63, size=50, dtype=np.uint64)
    np.testing.assert_array_equal(popcount(words), [bin(int(w)).count("1") for w in words])


def test_dequantize_matches_sentence_transformers_rescore_helper() -> None:
    rng = np.random.default_rng(2)
    emb = rng.standard_normal((20, 10)).astype(np.float32)
    ranges = quantization_ranges(emb)
    for p in ("int8", "uint8"):
        codes = quantize_embeddings(emb, p, ranges=ranges)
        ref = st_util.quantization._dequantize_embeddings(codes.astype(int), p, ranges)
        np.testing.assert_array_equal(dequantize_embeddings(codes, p, ranges), ref)
        # the dequantized value is the bucket's lower edge: within one step below the input
        step = (ranges[1] - ranges[0]) / 255
        err = emb - dequantize_embeddings(codes, p, ranges)
        assert np.all(err >= -1e-6) and np.all(err <= step + 1e-6)


def _st_quantize():
    try:
        from sentence_transformers.util.quantization import quantize_embeddings
    except ImportError:  # older releases
        from sentence_transformers.quantization import quantize_embeddings
    return quantize_embeddings


def test_encode_precision_and_cli_match_sentence_transformers(tmp_path):
    """encode(precision=...) and `sse-np encode --precision` give sentence-transformers' codes, bit for bit."""
    import sse_np
    from helpers.models import make_random_model
    from sse_np.cli import main

    st_quantize = _st_quantize()
    folder = make_random_model(tmp_path / "m", dim=40)
    model = sse_np.load(folder, backend="numpy")
    texts = [f"text {i} about cats and dogs" for i in range(50)] + ["", "café"]
    floats = model.encode(texts, 24)
    ranges = np.vstack([floats.min(0), floats.max(0)])
    for precision in ("int8", "uint8", "binary", "ubinary"):
        want = st_quantize(floats, precision, ranges=ranges if "int" in precision else None)
        got = model.encode(texts, 24, precision=precision, ranges=ranges if "int" in precision else None)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), precision
    assert model.encode(texts, 24, precision="int8").tobytes() == st_quantize(floats, "int8").tobytes()
    src = tmp_path / "in.txt"
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    np.save(tmp_path / "r.npy", ranges)
    for precision, extra in (("binary", []), ("ubinary", []), ("int8", ["--ranges", str(tmp_path / "r.npy")])):
        out = tmp_path / f"{precision}.npy"
        assert (
            main(
                [
                    "encode",
                    str(src),
                    "-o",
                    str(out),
                    "--dim",
                    "24",
                    "--model",
                    str(folder),
                    "--precision",
                    precision,
                    *extra,
                ]
            )
            == 0
        )
        want = st_quantize(floats, precision, ranges=ranges if precision == "int8" else None)
        got = np.load(out)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), precision
    with pytest.raises(ValueError, match=r"unknown precision|precision"):
        model.encode(texts, 24, precision="float16")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert (
        main(["encode", str(src), "-o", str(tmp_path / "x.npy"), "--model", str(folder), "--precision", "uint8"]) == 1
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # refused before writing anything

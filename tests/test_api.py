"""Public API behaviour: input validation, shapes, dims, default model, imports."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import sse_np
import sse_np.defaults as api


@pytest.fixture(scope="module")
def model(full_small):
    return sse_np.load(full_small[0])


def test_shapes_and_types(model):
    one = model.encode("hello")
    assert one.shape == (48,) and one.dtype == np.float32
    many = model.encode(["hello", "world", ""], dim=32)
    assert many.shape == (3, 32) and many.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(model.encode(("hello", "world")), model.encode(["hello", "world"]))
    np.testing.assert_array_equal(model.encode(t for t in ["hello", "world"]), model.encode(["hello", "world"]))
    np.testing.assert_array_equal(model.encode(np.array(["hello", "world"])), model.encode(["hello", "world"]))
    np.testing.assert_array_equal(model.encode("hello"), model.encode(["hello"])[0])


def test_rows_in_input_order_across_batches(model):
    texts = [f"text number {i} " * (i % 7) for i in range(1000)]
    whole = model.encode(texts, batch_size=1000)
    np.testing.assert_array_equal(model.encode(texts, batch_size=3), whole)
    for i in (0, 1, 499, 999):
        np.testing.assert_array_equal(model.encode(texts[i]), whole[i])


def test_empty_list(model):
    assert model.encode([]).shape == (0, 48)
    assert model.encode([], dim=32).shape == (0, 32)


@pytest.mark.parametrize(
    "bad,index,tname",
    [
        (["ok", 3, "fine"], 1, "int"),
        (["ok", None], 1, "NoneType"),
        ([b"bytes"], 0, "bytes"),
        (["a", "b", ["nested"]], 2, "list"),
    ],
)
def test_non_str_element_names_index_and_type(model, bad, index, tname):
    with pytest.raises(TypeError, match=rf"texts\[{index}\] is {tname}, expected str"):
        model.encode(bad)


@pytest.mark.parametrize("bad", [None, 42, b"raw bytes"])
def test_non_text_input(model, bad):
    with pytest.raises(TypeError, match="texts must be"):
        model.encode(bad)


def test_lone_surrogate_is_a_clear_error(model):
    with pytest.raises(ValueError, match=r"text 2 cannot be tokenized: it contains a lone surrogate"):
        model.encode(["fine", "also fine", "bad \ud800 here", "fine"], batch_size=2)


def test_utf8_texts_is_a_sequence_of_the_column():
    pa = pytest.importorskip("pyarrow")
    from sse_np.engine.texts import Utf8Texts

    values = ["zero", "", "deux é", "三", "four"]
    texts = Utf8Texts.from_arrow(pa.array(["x", *values], pa.large_string()).slice(1))
    assert list(texts) == values and len(texts) == 5 and texts.nbytes == len("".join(values).encode())
    assert texts[-1] == "four" and list(texts[1:4]) == values[1:4] and texts[::2] == values[::2]
    assert list(texts[3:1]) == [] and list(texts[2:][1:]) == values[3:]
    with pytest.raises(IndexError):
        texts[5]


def test_arrow_column_errors_name_the_text(model):
    pa = pytest.importorskip("pyarrow")
    assert model.encode(pa.array([], pa.string())).shape == (0, 48)
    with pytest.raises(TypeError, match=r"texts\[2\] is null \(None\), expected str"):
        model.encode(pa.array(["a", "b", None, "d"]))
    with pytest.raises(TypeError, match=r"texts must be a str or a sequence of str; got an Arrow column of int64"):
        model.encode(pa.array([1, 2]))
    # Arrow does not check UTF-8 when a column is built from raw buffers (or read from some files)
    data = b"fine|also fine|" + b"bad \xff\xfe" + b"|fine"
    ends = np.cumsum([0, 4, 9, 6, 4], dtype=np.int32)
    column = pa.Array.from_buffers(
        pa.string(), 4, [None, pa.py_buffer(ends.tobytes()), pa.py_buffer(data.replace(b"|", b""))]
    )
    with pytest.raises(ValueError, match=r"text 2 is not valid UTF-8 \(invalid start byte at byte 4\)"):
        model.encode(column)


@pytest.mark.parametrize("dim", [0, -1, 49, 1000])
def test_dim_out_of_range(model, dim):
    with pytest.raises(ValueError, match=r"dim must be in 1\.\.48"):
        model.encode("x", dim=dim)


@pytest.mark.parametrize("dim", [1.5, "256", True])
def test_dim_wrong_type(model, dim):
    with pytest.raises(TypeError, match="dim must be an int"):
        model.encode("x", dim=dim)


def test_numpy_int_dim_and_aliases(model):
    np.testing.assert_array_equal(model.encode("x", dim=np.int64(32)), model.encode("x", truncate_dim=32))
    np.testing.assert_array_equal(model.encode("x", normalize=False), model.encode("x", normalize_embeddings=False))
    with pytest.raises(ValueError, match="disagree"):
        model.encode("x", dim=32, truncate_dim=16)


@pytest.mark.parametrize("batch_size", [0, -5])
def test_bad_batch_size(model, batch_size):
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        model.encode(["x"], batch_size=batch_size)


def test_truncate_then_normalize(model):
    raw = model.encode(["some text here"], normalize=False)
    for dim in (48, 32, 7):
        want = raw[:, :dim] / np.linalg.norm(raw[:, :dim], axis=1, keepdims=True)
        np.testing.assert_allclose(model.encode(["some text here"], dim), want, atol=1e-6)


def test_tokenize_api(model):
    ids, offsets = model.tokenize(["hello world", "", "x"])
    assert ids.dtype == np.int32 and offsets.dtype == np.int64
    assert offsets.tolist()[0:3] == [0, 2, 2] and offsets[-1] == ids.size


def test_similarity():
    a = np.array([[3.0, 4.0], [1.0, 0.0]], np.float32)
    b = np.array([[0.0, 2.0]], np.float32)
    np.testing.assert_allclose(sse_np.similarity(a, b), [[0.8], [0.0]], atol=1e-7)
    assert sse_np.similarity(a[0], b[0]).shape == (1, 1)
    with pytest.raises(ValueError, match="same d"):
        sse_np.similarity(a, np.ones((2, 3)))


def test_default_model_missing_is_a_clear_error(monkeypatch, tmp_path):
    (tmp_path / "weights").mkdir()
    monkeypatch.setenv("SSE_NP_MODEL", str(tmp_path / "weights"))
    monkeypatch.setattr(api, "_default", None)
    with pytest.raises(sse_np.ModelNotFoundError, match=r"no default model.*weights"):
        sse_np.encode("x")


def test_default_model_loaded_once_thread_safe(monkeypatch, full_small):
    monkeypatch.setenv("SSE_NP_MODEL", str(full_small[0]))
    monkeypatch.setattr(api, "_default", None)
    calls, seen = [], []
    real_load = api.load

    def counting_load(path):
        calls.append(path)
        return real_load(path)

    monkeypatch.setattr(api, "load", counting_load)
    threads = [threading.Thread(target=lambda: seen.append(sse_np.encode(["same"], dim=32))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(seen) == 8
    for v in seen:
        np.testing.assert_array_equal(v, seen[0])


def test_concurrent_encoding_is_consistent(model):
    texts = [f"doc {i} about things" for i in range(300)]
    want = model.encode(texts)
    results = [None] * 6

    def run(k):
        results[k] = model.encode(texts, batch_size=7)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, want)


def _run(code: str, **env) -> str:
    full_env = {**os.environ, **env}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_and_encode_never_import_torch(full_small):
    code = (
        "import sys, sse_np\n"
        f"m = sse_np.load({str(full_small[0])!r})\n"
        "v = m.encode(['hello world'] * 100, dim=32)\n"
        "print(m.warmup(), 'torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
    )
    assert _run(code, SSE_NP_DISABLE_NUMBA="0") == "numba False False"


def test_numpy_path_does_not_import_numba(full_small):
    code = (
        "import sys, sse_np\n"
        f"m = sse_np.load({str(full_small[0])!r})\n"
        "v = m.encode(['hello world'], dim=32)\n"
        "print(m.warmup(), 'numba' in sys.modules, 'torch' in sys.modules)\n"
    )
    assert _run(code, SSE_NP_DISABLE_NUMBA="1") == "numpy False False"


def test_import_is_light():
    assert (
        _run("import sys, sse_np; print(sorted(m for m in ('numba', 'torch', 'llvmlite') if m in sys.modules))") == "[]"
    )


def test_default_folder_without_weights_says_so(monkeypatch, tmp_path):
    """A weights/ folder holding no weight files (only a stray script) is 'no model yet', not a crash."""
    (tmp_path / "build.py").write_text("# builds the model\n")
    monkeypatch.setenv("SSE_NP_MODEL", str(tmp_path))
    monkeypatch.setattr(api, "_default", None)
    with pytest.raises(sse_np.ModelNotFoundError, match=r"no default model.*no weight files"):
        sse_np.default_model()


def test_threads_setting(full_small, monkeypatch):
    texts = [f"text number {i} with some words, and more words" for i in range(3000)] + ["naïve café"] * 10
    one = sse_np.load(full_small[0], threads=1)
    two = sse_np.load(full_small[0], threads=2)
    assert (one.threads, two.threads) == (1, 2)
    np.testing.assert_array_equal(one.encode(texts), two.encode(texts))
    monkeypatch.setenv("SSE_NP_THREADS", "1")
    assert sse_np.load(full_small[0]).threads == 1
    assert sse_np.load(full_small[0], threads=2).threads == 2  # the argument wins
    monkeypatch.setenv("SSE_NP_THREADS", "many")
    with pytest.raises(ValueError, match="SSE_NP_THREADS"):
        sse_np.load(full_small[0])
    monkeypatch.delenv("SSE_NP_THREADS")
    assert sse_np.load(full_small[0]).threads is None
    for bad, err in [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)]:
        with pytest.raises(err, match="threads"):
            sse_np.load(full_small[0], threads=bad)


def test_unordered_or_keyed_containers_are_refused(full_small):
    """A mapping would encode its keys and a set would come back in no defined order: TypeError with a hint."""
    model = sse_np.load(full_small[0], backend="numpy")
    for bad, hint in [
        ({"text": "hello"}, "mapping"),
        ({"a", "b"}, "unordered"),
        (frozenset({"a"}), "unordered"),
        ({"text": "hello"}.keys(), "unordered"),
    ]:
        with pytest.raises(TypeError, match=hint):
            model.encode(bad)
        with pytest.raises(TypeError, match=hint):
            model.tokenize(bad)
    with pytest.raises(TypeError, match="mapping"):
        sse_np.encode({"text": "hello"})
    with pytest.raises(TypeError, match="1-D array"):
        model.encode(np.array([["a", "b"]]))
    # Ordered containers of texts are fine, in order: list, tuple, dict values, generator, 1-D array.
    want = model.encode(["x", "y"], 16)
    for good in (("x", "y"), {"k1": "x", "k2": "y"}.values(), (t for t in ["x", "y"]), np.array(["x", "y"])):
        assert model.encode(good, 16).tobytes() == want.tobytes()


def test_old_evaluation_names_warn_and_still_work():
    import sse_np.eval

    for name in ("evaluate", "format_report", "load_beir", "write_beir", "DEFAULT_DIMS", "METRICS"):
        with pytest.warns(DeprecationWarning, match=f"sse_np.{name} moved to sse_np.eval.{name}"):
            assert getattr(sse_np, name) is getattr(sse_np.eval, name)
    with pytest.raises(AttributeError):
        sse_np.no_such_name  # noqa: B018
    assert len(sse_np.__all__) <= 17  # was 20, 10 of them evaluation; + Index (issue 26)

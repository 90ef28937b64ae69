"""Hostile weight files and tokenizers: every case is ``ModelLoadError`` naming the file
and the problem -- never another exception, a hang or a crash -- or, for the fuzzed
mutations that still describe a valid model, exactly the torch reference's vectors.

The fuzz tests load on the NumPy back-end (no compile; same bits as numba). For a longer
exploration: ``FC_FUZZ_BACKEND=numba FC_FUZZ_TIMEOUT=300 pytest tests/test_loading_hostile.py
-k fuzz --hypothesis-seed=N``.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import sse_np
from sse_np import ModelLoadError

torch = pytest.importorskip("torch")
from helpers.reference import TorchSSE, dequantize_q4, quantize_q4, reference_tokenize  # noqa: E402

V, D = 2100, 4  # bert-base-uncased's first 2100 entries: the specials, characters and the commonest words
TEXTS = ["hello world", "the of and in", "", "zzqx unknownish words", "日本 café", "[UNK] [CLS]"]
LOAD_TIMEOUT = float(os.environ.get("FC_FUZZ_TIMEOUT", "20"))


# -- building blocks --------------------------------------------------------------------
class Blob(bytes):
    def __repr__(self) -> str:  # hypothesis prints its arguments
        return f"<{len(self)} bytes>"


@pytest.fixture(scope="module")
def small_tokenizer(tokenizer_json, tmp_path_factory) -> bytes:
    """A WordPiece tokenizer.json over V entries (ids 0..V-1), padding and truncation off."""
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    spec["model"]["vocab"] = {tok: i for tok, i in spec["model"]["vocab"].items() if i < V}
    spec["padding"] = spec["truncation"] = None
    assert all(t["id"] < V for t in spec["added_tokens"])
    return Blob(json.dumps(spec, ensure_ascii=False).encode("utf-8"))


def tensors(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "embedding.weight": rng.standard_normal((V, D), dtype=np.float32),
        "dyt.alpha": rng.uniform(0.2, 1.5, D).astype(np.float32),
        "dyt.beta": rng.uniform(-1.5, 1.5, D).astype(np.float32),
        "dyt.bias": rng.normal(0.0, 0.3, D).astype(np.float32),
    }


def _encode(array: np.ndarray, dtype: str) -> bytes:
    a = np.ascontiguousarray(array, dtype=np.float32)
    if dtype == "F16":
        return a.astype("<f2").tobytes()
    if dtype == "BF16":  # the high half of each float32 (what the reader widens back exactly)
        return (a.view(np.uint32) >> 16).astype("<u2").tobytes()
    return a.astype("<f4").tobytes()


def layout(
    arrays: dict[str, np.ndarray], dtypes: dict[str, str] | None = None, order: list[str] | None = None
) -> tuple[dict, bytes]:
    """A safetensors header (as a dict) and data area, laid out as the safetensors library does
    (any tensor order in the data area, each tensor in its dtype)."""
    header, data, at = {}, b"", 0
    for key in order or sorted(arrays):
        dtype = (dtypes or {}).get(key, "F32")
        raw = _encode(arrays[key], dtype)
        header[key] = {"dtype": dtype, "shape": list(arrays[key].shape), "data_offsets": [at, at + len(raw)]}
        data, at = data + raw, at + len(raw)
    return header, data


def st_bytes(header: dict | str | bytes, data: bytes, *, length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else (header if isinstance(header, str) else json.dumps(header)).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def write_model(folder: Path, weights: bytes, tokenizer: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "tokenizer.json").write_bytes(tokenizer)
    return folder


def load_with_timeout(folder: Path, texts=TEXTS):
    """``load(folder).encode(texts)`` in a daemon thread: ("ok", vectors) or ("error", exception); fails on a hang."""
    result: list = []

    def run():
        try:
            model = sse_np.load(folder, backend=os.environ.get("FC_FUZZ_BACKEND", "numpy"))
            result.append(("ok", model.encode(texts, normalize=False), model))
        except BaseException as exc:
            result.append(("error", exc, None))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(LOAD_TIMEOUT)
    assert result, f"loading {folder} hung for {LOAD_TIMEOUT} s"
    return result[0]


def refused(folder: Path, *needles: str) -> str:
    kind, value, _ = load_with_timeout(folder)
    assert kind == "error", f"{folder} loaded"
    assert type(value) in (ModelLoadError, sse_np.ModelNotFoundError), repr(value)
    message = str(value)
    for needle in needles:
        assert needle in message, message
    return message


# -- safetensors headers with wrong types and impossible values --------------------------
def _mutated(change) -> tuple[dict, bytes]:
    header, data = layout(tensors())
    change(header)
    return header, data


def _set(key, field, value):
    def change(header):
        header[key][field] = value

    return change


HEADER_CASES = {
    "dtype is a list": (_set("embedding.weight", "dtype", ["F32"]), "dtype is list"),
    "dtype is an int": (_set("dyt.alpha", "dtype", 32), "dtype is int"),
    "dtype is a bool": (_set("dyt.alpha", "dtype", True), "dtype is bool"),
    "dtype unknown": (_set("dyt.alpha", "dtype", "F64"), "dtype F64"),
    "shape of strings": (_set("embedding.weight", "shape", [str(V), str(D)]), "shape must be a list of non-negative"),
    "shape of floats": (_set("embedding.weight", "shape", [float(V), float(D)]), "shape must be a list"),
    "shape of bools": (_set("dyt.alpha", "shape", [True]), "shape must be a list"),
    "shape a string": (_set("dyt.alpha", "shape", "4"), "shape must be a list"),
    "negative dims": (_set("embedding.weight", "shape", [-V, -D]), "shape must be a list of non-negative"),
    "product beyond int64": (_set("embedding.weight", "shape", [2**40, 2**40]), "does not fit its byte range"),
    "dim beyond int64": (_set("embedding.weight", "shape", [2**70, 1]), "does not fit its byte range"),
    "offsets as strings": (_set("dyt.beta", "data_offsets", ["0", "16"]), "data_offsets must be two integers"),
    "offsets as floats": (_set("dyt.beta", "data_offsets", [0.0, 16.0]), "data_offsets must be two integers"),
    "three offsets": (_set("dyt.beta", "data_offsets", [0, 8, 16]), "data_offsets must be two integers"),
    "offsets past the end": (
        lambda h: h["embedding.weight"]["data_offsets"].__setitem__(1, 10**12),
        "does not fit its byte range",
    ),
    "negative offsets": (_set("dyt.alpha", "data_offsets", [-16, 0]), "does not fit its byte range"),
    "entry not an object": (lambda h: h.__setitem__("dyt.bias", [1, 2]), "expected an object with dtype"),
    "entry without shape": (lambda h: h["dyt.bias"].pop("shape"), "expected an object with dtype"),
    "same range twice": (
        lambda h: h["dyt.beta"].__setitem__("data_offsets", list(h["dyt.alpha"]["data_offsets"])),
        "overlaps",
    ),
    "swapped ranges": (lambda h: (h["dyt.beta"].__setitem__("data_offsets", [0, 8]),), "does not fit its byte range"),
}


@pytest.mark.parametrize("case", list(HEADER_CASES))
def test_header_with_wrong_types(tmp_path, small_tokenizer, case):
    change, needle = HEADER_CASES[case]
    header, data = _mutated(change)
    folder = write_model(tmp_path / "m", st_bytes(header, data), small_tokenizer)
    refused(folder, "model.safetensors", needle)


@pytest.mark.parametrize(
    "case,raw,needle",
    [
        ("deep nesting", '{"__metadata__": ' + "[" * 200_000 + "]" * 200_000 + "}", "nested too deeply"),
        (
            "integer too long",
            '{"x": {"dtype": "F32", "shape": [' + "9" * 6000 + '], "data_offsets": [0, 0]}}',
            "integer string conversion",
        ),
        ("duplicate key", None, "appears twice"),
        ("not an object", "[1, 2, 3]", "not a JSON object"),
        ("not JSON", "{'a': 1}", "corrupt safetensors header"),
        ("not UTF-8", b'{"a\xff": 1}', "corrupt safetensors header"),
    ],
)
def test_header_json_itself(tmp_path, small_tokenizer, case, raw, needle):
    header, data = layout(tensors())
    if raw is None:
        text = json.dumps(header)
        raw = text[:-1] + ', "dyt.bias": ' + json.dumps(header["dyt.bias"]) + "}"
    folder = write_model(tmp_path / "m", st_bytes(raw, data), small_tokenizer)
    refused(folder, "model.safetensors", needle)


@pytest.mark.parametrize(
    "case", ["length beyond file", "length zero", "length 2**64-1", "7 bytes", "trailing bytes", "gap"]
)
def test_header_length_and_file_size(tmp_path, small_tokenizer, case):
    header, data = layout(tensors())
    weights = st_bytes(header, data)
    if case == "length beyond file":
        weights = st_bytes(header, data, length=len(weights))
    elif case == "length zero":
        weights = st_bytes(header, data, length=0)
    elif case == "length 2**64-1":
        weights = st_bytes(header, data, length=2**64 - 1)
    elif case == "7 bytes":
        weights = weights[:7]
    elif case == "trailing bytes":
        weights += b"\0" * 8
    else:  # every tensor moved 8 bytes on, 8 unused bytes at the start
        for entry in header.values():
            entry["data_offsets"] = [o + 8 for o in entry["data_offsets"]]
        weights = st_bytes(header, b"\0" * 8 + data)
    folder = write_model(tmp_path / "m", weights, small_tokenizer)
    refused(folder, "model.safetensors")


# -- weight "files" that are not files -----------------------------------------------------
def _not_a_file(path: Path, kind: str) -> None:
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dangling link":
        path.symlink_to(path.parent / "absent")
    else:
        path.symlink_to(kind)  # a device


NOT_FILES = {
    "folder": "is a folder",
    "fifo": "is a named pipe",
    "/dev/zero": "is a device",
    "/dev/null": "is a device",
    "dangling link": "missing",
}


@pytest.mark.parametrize("kind", list(NOT_FILES))
@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer.json"])
def test_weight_file_that_is_not_a_file(tmp_path, small_tokenizer, kind, name):
    header, data = layout(tensors())
    folder = write_model(tmp_path / "m", st_bytes(header, data), small_tokenizer)
    (folder / name).unlink()
    _not_a_file(folder / name, kind)
    refused(folder, name, NOT_FILES[kind])


@pytest.mark.parametrize("kind", list(NOT_FILES))
@pytest.mark.parametrize("name", ["model_rest.safetensors", "embedding.q4_k_m.bin"])
def test_q4_file_that_is_not_a_file(tmp_path, small_tokenizer, kind, name):
    from sse_np.checkpoint.write import save_q4

    header, data = layout(tensors())
    full = write_model(tmp_path / "full", st_bytes(header, data), small_tokenizer)
    folder = save_q4(sse_np.load(full, backend="numpy"), tmp_path / "q4")
    (folder / name).unlink()
    _not_a_file(folder / name, kind)
    refused(folder, name, NOT_FILES[kind])


def test_two_layouts_in_one_folder_are_refused(tmp_path, small_tokenizer):
    from sse_np.checkpoint.write import save_q4

    header, data = layout(tensors())
    full = write_model(tmp_path / "full", st_bytes(header, data), small_tokenizer)
    q4 = save_q4(sse_np.load(full, backend="numpy"), tmp_path / "q4")
    for name in ("model_rest.safetensors", "embedding.q4_k_m.bin"):
        (full / name).write_bytes((q4 / name).read_bytes())
    message = refused(full, "holds two layouts", "model.safetensors", "model_rest.safetensors + embedding.q4_k_m.bin")
    assert str(full) in message
    (full / "model_rest.safetensors").unlink()  # even one 4-bit file is a second layout
    refused(full, "holds two layouts", "embedding.q4_k_m.bin")


@pytest.mark.parametrize(
    "entry,needle",
    [
        ({"idx": 0, "path": "../elsewhere", "type": "x.StaticEmbedding"}, "leaves the repository folder"),
        ({"idx": 0, "path": "/etc", "type": "x.StaticEmbedding"}, "leaves the repository folder"),
        ({"idx": 0, "path": ["a"]}, "leaves the repository folder"),
    ],
)
def test_modules_json_cannot_point_outside(tmp_path, entry, needle):
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "modules.json").write_text(json.dumps([entry]))
    refused(tmp_path / "repo", "modules.json", needle)
    (tmp_path / "repo" / "modules.json").write_text("[" * 100_000 + "]" * 100_000)
    refused(tmp_path / "repo", "modules.json", "nested too deeply")


# -- tokenizer.json inconsistent with the table or with itself --------------------------------
def _tok(small_tokenizer: bytes, change) -> bytes:
    spec = json.loads(small_tokenizer)
    change(spec)
    return json.dumps(spec).encode()


@pytest.mark.parametrize(
    "case",
    [
        "unk missing",
        "unk is an int",
        "duplicate id",
        "ids beyond V",
        "not UTF-8",
        "not JSON",
        "deep JSON",
        "empty",
        "no model",
        "vocab id a string",
    ],
)
def test_bad_tokenizer(tmp_path, small_tokenizer, case):
    header, data = layout(tensors())
    tok = {
        "unk missing": lambda: _tok(small_tokenizer, lambda s: s["model"]["vocab"].pop("[UNK]")),
        "unk is an int": lambda: _tok(small_tokenizer, lambda s: s["model"].__setitem__("unk_token", 100)),
        "duplicate id": lambda: _tok(small_tokenizer, lambda s: s["model"]["vocab"].__setitem__("the", 0)),
        "ids beyond V": lambda: _tok(small_tokenizer, lambda s: s["model"]["vocab"].__setitem__("zzqx", V)),
        "not UTF-8": lambda: small_tokenizer[:50] + b"\xff\xfe" + small_tokenizer[50:],
        "not JSON": lambda: small_tokenizer[:-1],
        "deep JSON": lambda: b'{"model": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "empty": lambda: b"",
        "no model": lambda: b'{"version": "1.0"}',
        "vocab id a string": lambda: _tok(small_tokenizer, lambda s: s["model"]["vocab"].__setitem__("the", "1996")),
    }[case]()
    needle = {
        "unk missing": "unknown token '[UNK]' is not in its vocabulary",
        "unk is an int": "unknown token 100 is not in its vocabulary",
        "duplicate id": "tokens '[PAD]' and 'the' share the id 0",
        "ids beyond V": f"ids up to {V}",
        "not UTF-8": "not UTF-8",
        "deep JSON": "nested too deeply",
        "no model": 'no "model" object',
    }.get(case, "cannot load tokenizer")
    folder = write_model(tmp_path / "m", st_bytes(header, data), tok)
    refused(folder, "tokenizer.json", needle)


# -- property-based: mutate valid small checkpoints -------------------------------------------
def reference_vectors(folder: Path, texts=TEXTS) -> np.ndarray:
    """The torch reference on whatever the official readers make of the files."""
    from safetensors.torch import load_file

    weights = {k: v.float().numpy() for k, v in load_file(str(folder / "model.safetensors")).items()}
    ids = reference_tokenize(folder / "tokenizer.json", texts)
    dyt = (weights["dyt.alpha"], weights["dyt.beta"], weights["dyt.bias"])
    return TorchSSE(weights["embedding.weight"], dyt)(ids, weights["embedding.weight"].shape[1], normalize=False)


JUNK = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
    st.lists(st.integers(-5, 10**6), max_size=4),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(["F32", "F16", "BF16", "F64", "I32", "U8", "f32", ""]),
)
KEYS = sorted(tensors())


@st.composite
def weight_mutation(draw):
    """One change to a valid checkpoint's safetensors file: a header field, the length prefix, the size, a byte."""
    kind = draw(st.sampled_from(["field", "field", "dtype", "shape", "offsets", "length", "size", "byte", "rename"]))
    key = draw(st.sampled_from(KEYS))
    if kind == "field":
        return kind, key, draw(st.sampled_from(["dtype", "shape", "data_offsets"])), draw(JUNK)
    if kind == "dtype":
        return kind, key, draw(st.sampled_from(["F16", "BF16", "F32", "F64", "I8"])), None
    if kind == "shape":
        return kind, key, draw(st.lists(st.integers(-3, 2 * V * D), min_size=0, max_size=3)), None
    if kind == "offsets":
        return kind, key, draw(st.integers(-64, 64)), draw(st.integers(-64, 64))
    if kind == "length":
        return kind, key, draw(st.integers(-64, 64)), None
    if kind == "size":
        return kind, key, draw(st.integers(-(V * D * 4 + 200), 64)), None
    if kind == "byte":
        return kind, key, draw(st.integers(0, 400)), draw(st.integers(0, 255))
    return kind, key, draw(st.sampled_from(["embedding.weight", "dyt.alpha", "extra", "__metadata__"])), None


def apply_weight_mutation(
    mutation, seed: int, base: tuple[dict, list | None] = ({}, None), arrays: dict[str, np.ndarray] | None = None
) -> bytes:
    kind, key, a, b = mutation
    arrays = tensors(seed) if arrays is None else arrays
    key = key if key in arrays else sorted(arrays)[0]
    header, data = layout(arrays, base[0], [k for k in base[1] if k in arrays] if base[1] else None)
    length = None
    if kind == "field":
        header[key][a] = b
    elif kind == "dtype":
        header[key]["dtype"] = a
    elif kind == "shape":
        header[key]["shape"] = a
    elif kind == "offsets":
        start, end = header[key]["data_offsets"]
        header[key]["data_offsets"] = [start + a, end + b]
    elif kind == "rename":
        header[a] = header.pop(key)
    raw = st_bytes(header, data)
    if kind == "length":
        length = len(raw) - 8 - len(data) + a
        raw = struct.pack("<Q", max(length, 0)) + raw[8:]
    elif kind == "size":
        raw = raw[: len(raw) + a] if a < 0 else raw + bytes(range(a))
    elif kind == "byte":
        i = a % len(raw)
        raw = raw[:i] + bytes([b]) + raw[i + 1 :]
    return raw


@st.composite
def tokenizer_mutation(draw):
    kind = draw(st.sampled_from(["none", "unk", "drop", "id", "model field", "top field", "byte"]))
    if kind == "unk":
        return kind, draw(st.one_of(st.sampled_from(["[UNK]", "the", "[PAD]", "nope"]), JUNK)), None
    if kind == "drop":
        return kind, draw(st.sampled_from(["[UNK]", "the", "[CLS]", "a", "##s"])), None
    if kind == "id":
        return kind, draw(st.sampled_from(["the", "[UNK]", "a"])), draw(st.one_of(st.integers(-5, V + 5), JUNK))
    if kind == "model field":
        return (
            kind,
            draw(st.sampled_from(["type", "continuing_subword_prefix", "max_input_chars_per_word", "vocab"])),
            draw(JUNK),
        )
    if kind == "top field":
        return (
            kind,
            draw(st.sampled_from(["normalizer", "pre_tokenizer", "added_tokens", "truncation", "model"])),
            draw(JUNK),
        )
    if kind == "byte":
        return kind, draw(st.integers(0, 10**6)), draw(st.integers(0, 255))
    return kind, None, None


def apply_tokenizer_mutation(small_tokenizer: bytes, mutation) -> bytes:
    kind, a, b = mutation
    if kind == "byte":
        i = a % len(small_tokenizer)
        return small_tokenizer[:i] + bytes([b]) + small_tokenizer[i + 1 :]
    spec = json.loads(small_tokenizer)
    model = spec["model"]
    if kind == "unk":
        model["unk_token"] = a
    elif kind == "drop":
        model["vocab"].pop(a, None)
    elif kind == "id":
        model["vocab"][a] = b
    elif kind == "model field":
        model[a] = b
    elif kind == "top field":
        spec[a] = b
    try:
        return json.dumps(spec).encode()
    except ValueError:  # NaN from JUNK: write it as Python's json does
        return json.dumps(spec, allow_nan=True).encode()


BENIGN_TOKENIZER = st.fixed_dictionaries(
    {
        "lowercase": st.booleans(),
        "strip_accents": st.sampled_from([None, True, False]),
        "truncation": st.sampled_from([None, 1, 3, 512]),
    }
)


def benign_tokenizer(small_tokenizer: bytes, options: dict) -> bytes:
    """Valid variants the loader must reproduce exactly: casing, accents, truncation."""
    spec = json.loads(small_tokenizer)
    spec["normalizer"]["lowercase"] = options["lowercase"]
    spec["normalizer"]["strip_accents"] = options["strip_accents"]
    n = options["truncation"]
    spec["truncation"] = (
        None if n is None else {"direction": "Right", "max_length": n, "strategy": "LongestFirst", "stride": 0}
    )
    return Blob(json.dumps(spec, ensure_ascii=False).encode("utf-8"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    dtypes=st.fixed_dictionaries({k: st.sampled_from(["F32", "F16", "BF16"]) for k in KEYS}),
    order=st.permutations(KEYS),
    weights=st.one_of(st.none(), weight_mutation()),
    options=BENIGN_TOKENIZER,
    tok=st.one_of(st.none(), tokenizer_mutation()),
    seed=st.integers(0, 3),
)
def test_fuzz_mutated_checkpoints_load_exactly_or_raise_model_load_error(
    small_tokenizer, dtypes, order, weights, options, tok, seed
):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "m"
        if weights is None:
            raw = st_bytes(*layout(tensors(seed), dtypes, order))
        else:
            raw = apply_weight_mutation(weights, seed, (dtypes, order))
        tokenizer = benign_tokenizer(small_tokenizer, options)
        if tok is not None:
            tokenizer = apply_tokenizer_mutation(tokenizer, tok)
        write_model(folder, raw, tokenizer)
        kind, value, _model = load_with_timeout(folder)
        event("refused" if kind == "error" else "loaded")
        if kind == "error":
            assert type(value) is ModelLoadError, f"{type(value).__name__}: {value}"
            assert str(folder / "model.safetensors") in str(value) or str(folder / "tokenizer.json") in str(value), str(
                value
            )  # names the file
            return
        want = reference_vectors(folder)  # the official readers must accept what sse_np accepted
        assert value.shape == want.shape
        np.testing.assert_allclose(value, want, rtol=1e-6, atol=1e-6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    size=st.one_of(st.just(0), st.integers(-3 * (D // 2 + 4), 3 * (D // 2 + 4))),
    byte=st.one_of(st.none(), st.tuples(st.integers(0, 10**6), st.integers(0, 255))),
    rest=st.one_of(st.none(), weight_mutation()),
    seed=st.integers(0, 3),
)
def test_fuzz_mutated_q4_checkpoints(small_tokenizer, size, byte, rest, seed):
    """The 4-bit layout: rest-file header mutations, .bin sizes and bytes; exact (vs the torch
    dequantisation of docs/reference/spec.md) or ModelLoadError."""
    arrays = tensors(seed)
    dyt = {k: v for k, v in arrays.items() if k != "embedding.weight"}
    packed = quantize_q4(arrays["embedding.weight"])
    if size < 0:
        packed = packed[:size]
    elif size > 0:
        packed += bytes(range(size))
    if byte is not None:
        i = byte[0] % len(packed)
        packed = packed[:i] + bytes([byte[1]]) + packed[i + 1 :]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "q4"
        folder.mkdir()
        rest_raw = st_bytes(*layout(dyt)) if rest is None else apply_weight_mutation(rest, seed, arrays=dyt)
        (folder / "model_rest.safetensors").write_bytes(rest_raw)
        (folder / "embedding.q4_k_m.bin").write_bytes(packed)
        (folder / "tokenizer.json").write_bytes(small_tokenizer)
        kind, value, _model = load_with_timeout(folder)
        event("refused" if kind == "error" else "loaded")
        if kind == "error":
            assert type(value) is ModelLoadError, f"{type(value).__name__}: {value}"
            assert any(
                str(folder / name) in str(value)
                for name in ("model_rest.safetensors", "embedding.q4_k_m.bin", "tokenizer.json")
            ), str(value)
            return
        from safetensors.torch import load_file

        vectors = {k: v.float().numpy() for k, v in load_file(str(folder / "model_rest.safetensors")).items()}
        dim = vectors["dyt.alpha"].shape[0]
        table = dequantize_q4(folder / "embedding.q4_k_m.bin", dim)
        ids = reference_tokenize(folder / "tokenizer.json", TEXTS)
        want = TorchSSE(table, (vectors["dyt.alpha"], vectors["dyt.beta"], vectors["dyt.bias"]))(
            ids, dim, normalize=False
        )
        np.testing.assert_allclose(value, want, rtol=1e-6, atol=1e-6)

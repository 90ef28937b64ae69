"""``sse-np encode`` with Parquet input/output and several joined text fields (sse_np.bulk.parquet)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import sse_np
from helpers.cli import without_compile_notice
from helpers.extras import install_commands
from helpers.models import make_random_model
from helpers.paths import SHARED_DATA
from sse_np.cli import main
from sse_np.errors import DataError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from sse_np.bulk import parquet  # noqa: E402

SCIFACT = SHARED_DATA / "scifact" / "corpus.jsonl"
DIM = 32


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("pq_model"), dim=DIM, seed=11)


@pytest.fixture(scope="module")
def model(model_dir: Path) -> sse_np.SSEModel:
    return sse_np.load(model_dir, backend="numpy")


@pytest.fixture(autouse=True)
def _numpy_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSE_NP_DISABLE_NUMBA", "1")  # same bits; no kernel compile in these tests


def _table(n: int) -> pa.Table:
    return pa.table(
        {
            "_id": [f"d{i}" for i in range(n)],
            "title": [None if i % 3 else f"Title {i}" for i in range(n)],
            "text": [f"document number {i} about cats and dogs" for i in range(n)],
            "year": list(range(n)),
        }
    )


def _vectors(table: pa.Table) -> np.ndarray:
    col = table.column("embedding").combine_chunks()
    return col.values.to_numpy().reshape(len(col), col.type.list_size)


def test_round_trip_single_field(tmp_path: Path, model_dir: Path, model: sse_np.SSEModel) -> None:
    src = _table(2500)
    pq.write_table(src, tmp_path / "in.parquet", row_group_size=1000)
    out = tmp_path / "out.parquet"
    assert (
        main(
            [
                "encode",
                str(tmp_path / "in.parquet"),
                "-o",
                str(out),
                "--model",
                str(model_dir),
                "--keep",
                "year",
                "--batch-size",
                "600",
            ]
        )
        == 0
    )
    got = pq.read_table(out)
    assert got.column_names == ["_id", "year", "embedding"]
    assert got.schema.field("embedding").type == pa.list_(pa.float32(), DIM)
    assert got["_id"].to_pylist() == src["_id"].to_pylist() and got["year"].to_pylist() == src["year"].to_pylist()
    np.testing.assert_array_equal(_vectors(got), model.encode(src["text"].to_pylist(), DIM))
    # One row group per written chunk: 600-row batches of each 1000-row input row group at most.
    sizes = [pq.ParquetFile(out).metadata.row_group(i).num_rows for i in range(pq.ParquetFile(out).num_row_groups)]
    assert sum(sizes) == 2500 and max(sizes) <= 600 and len(sizes) >= 5
    meta = pq.ParquetFile(out).metadata.row_group(0)
    assert meta.column(2).compression == "UNCOMPRESSED" and meta.column(0).compression == "SNAPPY"
    # Vectors never repeat: no dictionary for them (it made writing ~5x slower); the ids keep theirs.
    assert not any("DICTIONARY" in e for e in meta.column(2).encodings), meta.column(2).encodings
    assert any("DICTIONARY" in e for e in meta.column(0).encodings), meta.column(0).encodings


def test_multi_field_equals_eval_document_text(tmp_path: Path, model_dir: Path, model: sse_np.SSEModel) -> None:
    """A BEIR corpus converted to Parquet, --field title,text: vectors of exactly the eval's document texts."""
    from sse_np.eval.beir import read_corpus

    if not SCIFACT.is_file():
        pytest.skip("shared scifact corpus not present")
    records = [json.loads(line) for line in SCIFACT.read_text(encoding="utf-8").splitlines()[:800]]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    ids, texts = read_corpus(corpus)
    folder = tmp_path / "parts"
    folder.mkdir()
    table = pa.table(
        {
            "_id": [r["_id"] for r in records],
            "title": [r.get("title") for r in records],
            "text": [r["text"] for r in records],
        }
    )
    pq.write_table(table.slice(0, 500), folder / "part-0.parquet")
    pq.write_table(table.slice(500), folder / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")
    ref = model.encode(texts, DIM)
    for src, out in ((folder, tmp_path / "a.parquet"), (corpus, tmp_path / "b.parquet")):  # Parquet and JSONL input
        assert main(["encode", str(src), "-o", str(out), "--model", str(model_dir), "--field", "title,text"]) == 0
        got = pq.read_table(out)
        assert got["_id"].to_pylist() == ids
        np.testing.assert_array_equal(_vectors(got), ref)


def test_join_rules() -> None:
    from sse_np.bulk.readers import join_fields

    assert join_fields({"title": "A", "text": " b "}, ("title", "text"), "f", 1) == "A  b"
    assert join_fields({"title": None, "text": "b"}, ("title", "text"), "f", 1) == "b"
    assert join_fields({"text": "b", "title": "a"}, ("text", "title"), "f", 1) == "b a"  # given order
    with pytest.raises(DataError, match=r"^f:4: none of the fields 'title', 'text'"):
        join_fields({"x": 1}, ("title", "text"), "f", 4)
    with pytest.raises(DataError, match=r"^f:2: field 'title' is int"):
        join_fields({"title": 3, "text": "b"}, ("title", "text"), "f", 2)


@pytest.mark.parametrize(
    "column, fields, message",
    [
        (None, "body", r"in\.parquet: no column 'body' \(columns: '_id', 'title', 'text', 'year'\)"),
        ("text", "text", r"in\.parquet:1203: column 'text' is null; every row needs a text"),
        ("year", "year", r"in\.parquet:1: column 'year' is int64, expected a string"),
        ("both", "title,text", r"in\.parquet:1203: columns 'title', 'text' are all null"),
    ],
)
def test_row_numbered_errors(tmp_path: Path, model_dir: Path, capsys, column, fields, message) -> None:
    table = _table(2000)
    if column in ("text", "both"):
        texts = table["text"].to_pylist()
        texts[1202] = None
        table = table.set_column(2, "text", pa.array(texts, pa.string()))
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=500)
    out = tmp_path / "out.parquet"
    out.write_bytes(b"previous")
    assert (
        main(
            [
                "encode",
                str(tmp_path / "in.parquet"),
                "-o",
                str(out),
                "--model",
                str(model_dir),
                "--field",
                fields,
                "--batch-size",
                "256",
            ]
        )
        == 1
    )
    err = without_compile_notice(capsys.readouterr().err)
    assert err.count("\n") == 1
    import re

    assert re.search(message, err), err
    assert out.read_bytes() == b"previous"  # atomic: the old output is intact, no partial file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "out.parquet"]


def test_bytes_that_are_not_utf8_are_a_row_numbered_error(tmp_path: Path, model_dir: Path, capsys) -> None:
    # pyarrow writes (and reads back) a string column's bytes unchecked
    data = b"one" + b"tw\xc3" + b"three"
    column = pa.Array.from_buffers(
        pa.string(), 3, [None, pa.py_buffer(np.array([0, 3, 6, 11], np.int32).tobytes()), pa.py_buffer(data)]
    )
    pq.write_table(pa.table({"text": column}), tmp_path / "in.parquet")
    assert (
        main(["encode", str(tmp_path / "in.parquet"), "-o", str(tmp_path / "out.parquet"), "--model", str(model_dir)])
        == 1
    )
    err = capsys.readouterr().err
    assert "in.parquet:2: column 'text' is not valid UTF-8 (unexpected end of data at byte 2)" in err, err
    assert not (tmp_path / "out.parquet").exists()


def test_id_field(tmp_path: Path, model_dir: Path) -> None:
    pq.write_table(pa.table({"doc": ["a", "b"], "text": ["x", "y"]}), tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    assert (
        main(["encode", str(tmp_path / "in.parquet"), "-o", str(out), "--model", str(model_dir), "--id-field", "doc"])
        == 0
    )
    assert pq.read_table(out).column_names == ["doc", "embedding"]
    args = ["encode", str(tmp_path / "in.parquet"), "-o", str(out), "--model", str(model_dir), "--keep", "text"]
    assert main([*args, "--id-field", "doc"]) == 0
    assert pq.read_table(out).to_pydict()["doc"] == ["a", "b"]  # the id first, then the kept columns
    assert pq.read_table(out).column_names == ["doc", "text", "embedding"]
    with pytest.raises(DataError, match="no id column 'key'"):
        list(parquet.read_chunks(str(tmp_path / "in.parquet"), id_field="key"))


def test_writer_streams_row_groups(tmp_path: Path, model: sse_np.SSEModel) -> None:
    """Each write lands in the file before the next chunk is encoded (memory stays one chunk)."""
    from sse_np.bulk.writers import AtomicOutput

    pq.write_table(_table(3000), tmp_path / "in.parquet", row_group_size=1000)
    target = AtomicOutput(str(tmp_path / "out.parquet"))
    writer = parquet.ParquetWriter(target.file, DIM)
    sizes = []
    for chunk in parquet.read_chunks(str(tmp_path / "in.parquet"), chunk_rows=1000):
        writer.write(model.encode(chunk.texts, DIM), chunk.kept)
        sizes.append(target.tmp.stat().st_size)
    assert sizes[0] > 1000 * DIM * 2 and sizes[1] > sizes[0] + 1000 * DIM * 2 and sizes[2] > sizes[1]
    assert not (tmp_path / "out.parquet").exists()  # nothing at the destination until commit
    writer.close()
    target.commit()
    assert pq.ParquetFile(tmp_path / "out.parquet").num_row_groups == 3
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 3000


def test_missing_pyarrow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(ImportError, match=re.escape(install_commands("parquet"))):
        parquet.require_pyarrow()


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    pq.write_table(pa.table({"text": ["x"]}), tmp_path / "in.parquet")
    assert main(["encode", str(tmp_path / "in.parquet"), "-o", str(tmp_path / "out"), "--ray"]) == 1
    assert (
        capsys.readouterr().err
        == f"sse-np: error: Ray bulk embedding needs the 'ray' extra: {install_commands('ray')}\n"
    )

"""A corrupt Parquet page is a one-line error naming the file and the row group (issue 27 item 15).

Corruptions are made where the audit found them: a snappy page's data, a page header, a dictionary page.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli import fails
from helpers.models import make_random_model

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("SSE_NP_BACKEND", "numpy")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("corrupt_model"), dim=8, seed=4)


def _two_row_groups(path: Path, dictionary: bool) -> Path:
    texts = [f"document number {i} about {'cats' if i % 2 else 'dogs'} " * 3 for i in range(400)]
    table = pa.table({"_id": [f"d{i}" for i in range(400)], "text": texts})
    pq.write_table(table, path, row_group_size=200, compression="snappy", use_dictionary=dictionary)
    return path


def _corrupt(path: Path, group: int, where: str) -> None:
    meta = pq.ParquetFile(path).metadata.row_group(group)
    text = next(meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema == "text")
    first = text.dictionary_page_offset if text.has_dictionary_page else text.data_page_offset
    end = first + text.total_compressed_size  # the column chunk's bytes: first page to end
    start = first if where == "dictionary" else text.data_page_offset
    data = bytearray(path.read_bytes())
    stop = text.data_page_offset if where == "dictionary" else end
    offset = start + (1 if where == "header" else (stop - start) // 2)
    data[offset : offset + 24] = b"\xff\x13\x00\x99" * 6
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where,dictionary", [("data", False), ("header", False), ("dictionary", True), ("data", True)])
def test_corrupt_page_names_file_and_row_group(capsys, tmp_path, model_dir, where, dictionary):
    src = _two_row_groups(tmp_path / "in.parquet", dictionary)
    _corrupt(src, 1, where)
    out = tmp_path / "o.npy"
    fails(
        capsys,
        ["encode", str(src), "-o", str(out), "--model", str(model_dir)],
        r"in\.parquet: row group 1 of 2 is corrupt",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]

"""The on-disk format of :class:`sse_np.Index`: ``.npy`` arrays and a JSON manifest, written atomically.

A saved index is a folder::

    manifest.json     format name and version, the model's fingerprint, settings,
                      and every file's size and SHA-256
    ids.json          the document ids, in order
    vectors.npy       float32 rows, or int8/uint8/packed-bit codes
    ranges.npy        (quantized) the int8/uint8 ranges;  rescore.npy (binary) int8 rows
    dense_mean.npy, dense_cov.npy  (quantized) moments of the float vectors, for z-scores
    bm25_indptr.npy, bm25_docs.npy, bm25_weights.npy, stop_ids.npy   the BM25 index
    bm25_terms.npy    (lexical "words", format version 2, or "words+pieces", version 3) the word
                      vocabulary, UTF-8

``save`` writes a temporary sibling folder and renames it into place, so a
reader never sees half an index (replacing one moves the old folder aside
first: for that instant there is none). ``load``
memory-maps the arrays after checking the manifest, the file sizes and the
arrays' shapes (``verify=True`` also checks every SHA-256).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexFormatError

FORMAT = "sse_np.index"
VERSION = 1
WORDS_VERSION = 2  # an index of whole-word BM25 tokens (bm25_terms.npy): readers of version 1 must refuse it
# Words and pieces in one BM25 (word ids after the model's vocabulary): readers of version 2 would take the
# ids for words alone, so they must refuse it.
WORDS_PIECES_VERSION = 3
READABLE = (VERSION, WORDS_VERSION, WORDS_PIECES_VERSION)
MANIFEST = "manifest.json"
IDS = "ids.json"

_fingerprints: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def model_fingerprint(model: Any) -> str:
    """A short SHA-256 of what decides a model's vectors and tokens: the tokenizer and a sample of table rows.

    Every 1/1024th row of the table (all rows of small ones), its kind and
    shape, the DyT parameters and ``tokenizer.json``: cheap to compute
    (milliseconds), and any retrained or other model differs in them.
    """
    if model in _fingerprints:
        return _fingerprints[model]
    digest = hashlib.sha256()
    table = model.table
    digest.update(f"{table.kind}:{table.data.shape}:{table.data.dtype}".encode())
    step = max(1, table.data.shape[0] // 1024)
    digest.update(np.ascontiguousarray(table.data[::step]).tobytes())
    if table.scales is not None:
        digest.update(np.ascontiguousarray(table.scales).tobytes())
    for part in model.dyt or ():
        digest.update(np.ascontiguousarray(part).tobytes())
    digest.update(Path(model.tokenizer_path).read_bytes())
    value = digest.hexdigest()[:32]
    _fingerprints[model] = value
    return value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_folder(
    folder: str | os.PathLike[str], manifest: dict[str, Any], arrays: dict[str, np.ndarray], ids: list
) -> None:
    """Write the index into a temporary sibling of ``folder`` and rename it into place."""
    target = Path(folder)
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / MANIFEST).is_file())):
        raise IndexFormatError(target, "exists and is not an sse_np index; refusing to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        files: dict[str, dict[str, Any]] = {}
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        (tmp / IDS).write_text(json.dumps(ids, ensure_ascii=False), encoding="utf-8")
        for path in sorted(tmp.iterdir()):
            files[path.name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
        body = {"format": FORMAT, "version": VERSION, **manifest, "files": files}
        (tmp / MANIFEST).write_text(json.dumps(body, indent=2, sort_keys=True), encoding="utf-8")
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``; an old index there is moved aside first and removed after."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.{os.getpid()}.old")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest, checked for format, version and the files it lists (sizes)."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise IndexFormatError(folder, "no such index folder")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexFormatError(folder, f"not an sse_np index (no {MANIFEST})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise IndexFormatError(path, f"unreadable manifest: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexFormatError(path, f"not an sse_np index manifest (format {FORMAT!r} expected)")
    if manifest.get("version") not in READABLE:
        raise IndexFormatError(
            path,
            f"index format version {manifest.get('version')!r}; this sse_np reads versions "
            f"{', '.join(map(str, READABLE))}: rebuild it",
        )
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise IndexFormatError(path, "the manifest lists no files")
    for name, info in files.items():
        file = folder / name
        if not file.is_file():
            raise IndexFormatError(file, "missing (listed in the manifest)")
        if file.stat().st_size != info.get("bytes"):
            raise IndexFormatError(file, f"{file.stat().st_size} bytes, the manifest says {info.get('bytes')}: corrupt")
    return manifest


def verify_checksums(folder: Path, manifest: dict[str, Any]) -> None:
    for name, info in manifest["files"].items():
        if _sha256(folder / name) != info.get("sha256"):
            raise IndexFormatError(folder / name, "SHA-256 differs from the manifest's: corrupt")


def load_array(folder: Path, name: str, manifest: dict[str, Any]) -> np.ndarray:
    """A memory-mapped array listed in the manifest (a corrupt header is refused)."""
    file = f"{name}.npy"
    if file not in manifest["files"]:
        raise IndexFormatError(folder / file, "missing from the manifest")
    try:
        return np.load(folder / file, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise IndexFormatError(folder / file, f"unreadable array: {exc}") from None


def load_ids(folder: Path, manifest: dict[str, Any]) -> list:
    if IDS not in manifest["files"]:
        raise IndexFormatError(folder / IDS, "missing from the manifest")
    try:
        ids = json.loads((folder / IDS).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise IndexFormatError(folder / IDS, f"unreadable ids: {exc}") from None
    if not isinstance(ids, list):
        raise IndexFormatError(folder / IDS, "ids must be a JSON list")
    return ids

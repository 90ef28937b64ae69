"""The ``sse-np encode --ray`` job's bookkeeping: what it refuses before any work, and its manifest.

The manifest in the output folder records what decides the output's bits (the model's content hash and
every option that changes vectors), so a rerun resumes only the same job.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..errors import DataError

MANIFEST = "_sse_np_manifest.json"  # "_" prefix: Parquet readers skip it
_MANIFEST_VERSION = 2  # 2: the model by content hash, precision and format


def _model_fingerprint(model: Any) -> str:
    """A hash of the bytes the model is made of (weight files and tokenizer): a changed model is a new job."""
    from ..checkpoint.layout import FULL_FILE, Q4_FILE, REST_FILE

    names = (REST_FILE, Q4_FILE) if model.layout == "q4" else (FULL_FILE,)
    digest = hashlib.blake2b(digest_size=16)
    for path in [*(Path(model.path) / name for name in names), Path(model.tokenizer_path)]:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as fh:
            while block := fh.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()


def _manifest(args: Any, model: Any, dim: int, files: list[Path], root: Path) -> dict[str, Any]:
    """What decides the output's bits (the model's content and every option that changes vectors)."""
    return {
        "version": _MANIFEST_VERSION,
        "input": str(Path(args.input).resolve()),
        "files": [str(p.relative_to(root)) if p != root else p.name for p in files],
        "model": _model_fingerprint(model),
        "dim": dim,
        "precision": "float32",
        "format": "parquet",
        "field": args.field or "text",
        "keep": args.keep,
        "id_field": args.id_field,
        "normalize": False if args.no_normalize else None,
    }


def _refuse_unsupported(args: Any) -> None:
    """Options the --ray path cannot honour are refused, as the local path refuses what it cannot do."""
    if args.input == "-":
        raise DataError("-", "--ray reads Parquet files (a file or a folder), not stdin")
    wrong = [
        f"{name} {value}"
        for name, value, ok in (
            ("--precision", args.precision, args.precision == "float32"),
            ("--format", args.format, args.format in (None, "parquet")),
            ("--input-format", args.input_format, args.input_format in (None, "parquet")),
            ("--ranges", args.ranges, not args.ranges),
            ("--calibration", args.calibration, not args.calibration),
        )
        if not ok
    ]
    if wrong:
        raise DataError(
            args.output, f"--ray writes float32 Parquet from Parquet input; it cannot honour {', '.join(wrong)}"
        )


def _refuse_overlap(root: Path, out_dir: Path, model: Any) -> None:
    """The output folder neither is, holds nor lies in an input folder, nor is or lies in a model folder (a rerun
    would read its own outputs, or the manifest and outputs would land among the inputs or the model's files)."""
    out = out_dir.resolve()
    source = root.resolve()
    if not source.is_dir():  # one file: its output would replace it in its own folder
        if out == source.parent:
            raise DataError(out_dir, f"is the folder of the input {root}; its output would replace it")
    elif out == source or out.is_relative_to(source) or source.is_relative_to(out):
        raise DataError(out_dir, f"overlaps the input folder {root}; name an output folder outside it")
    for folder in model.folders():
        if out == folder or out.is_relative_to(folder):
            raise DataError(out_dir, f"is in the model folder {folder}; a model's files are never outputs")


def _check_manifest(out_dir: Path, wanted: dict[str, Any]) -> None:
    path = out_dir / MANIFEST
    wanted = json.loads(json.dumps(wanted))  # compare as stored (tuples are lists)
    if path.is_file():
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(path, f"unreadable manifest ({exc})") from None
        differ = [k for k in wanted if found.get(k) != wanted[k]]
        if differ:
            what = "; ".join(f"{k}: {found.get(k)!r} then, {wanted[k]!r} now" for k in differ)
            raise DataError(
                out_dir, f"was made with different arguments ({what}); resume with the same ones or choose a new folder"
            )
        return
    if any(p.suffix == ".parquet" for p in out_dir.iterdir()):
        raise DataError(out_dir, "holds Parquet files but no sse_np manifest; choose an empty or new folder")
    tmp = path.with_name(f".{MANIFEST}.partial")
    tmp.write_text(json.dumps(wanted, indent=1), encoding="utf-8")
    os.replace(tmp, path)

"""``sse-np quantize`` and ``sse-np download``: writing and fetching model files."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..errors import DataError
from .common import load_model


def quantize(args: argparse.Namespace) -> int:
    """Write ``--model`` in the 4-bit layout into a new (or 4-bit-only) folder, atomically."""
    from ..checkpoint.layout import FULL_FILE, MODULES_FILE, Q4_FILE, REST_FILE, TOKENIZER_FILE
    from ..checkpoint.write import save_q4

    model = load_model(args.model)
    dest = Path(os.path.realpath(args.output))
    _refuse_model_folder(args.output, dest, model)
    if dest.exists() and not dest.is_dir():
        raise DataError(args.output, "exists and is not a folder")
    for name in (FULL_FILE, MODULES_FILE):
        if (dest / name).exists():
            raise DataError(
                args.output,
                f"already holds {name}; the 4-bit files beside it would make the folder "
                "hold two layouts; name a new or empty folder",
            )
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Written into a temporary folder beside dest, then moved in: an error leaves dest as it was.
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        save_q4(model, tmp)
        _follow_umask(tmp)
        if not dest.exists():
            os.rename(tmp, dest)
        else:
            for name in (REST_FILE, Q4_FILE, TOKENIZER_FILE):
                os.replace(tmp / name, dest / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote the 4-bit layout of {model.path} to {args.output}", file=sys.stderr)
    return 0


def _refuse_model_folder(output: str, dest: Path, model) -> None:
    """The output folder is none of the model's folders, nor holds one: its files are never outputs."""
    for source in sorted({*model.folders(), Path(model.source).resolve()}):
        if source == dest or source.is_relative_to(dest):
            raise DataError(
                output,
                f"is the model folder {source}"
                + ("" if source == dest else " or holds it")
                + "; a model's files are never outputs; name a new folder",
            )


def _follow_umask(folder: Path) -> None:
    """mkdtemp makes 0700 and safetensors 0600: give the folder and its files the usual modes under the umask."""
    mask = os.umask(0)
    os.umask(mask)
    for path in folder.iterdir():
        os.chmod(path, 0o666 & ~mask)
    os.chmod(folder, 0o777 & ~mask)


def download(args: argparse.Namespace) -> int:
    """Fetch a hub repository; print its local folder on stdout."""
    from ..checkpoint.hub import download

    path = download(args.repo_id, revision=args.revision, local_dir=args.dir, force=args.force)
    print(path)  # stdout: usable as MODEL=$(sse-np download ...)
    return 0

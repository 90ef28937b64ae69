"""Command-line interface: ``sse-np encode | eval | serve | info | download | warmup | quantize | bench``.

Also ``python -m sse_np``. Every subcommand is a thin wrapper over the
public API:

* ``encode``   -- texts (plain lines or JSONL, file or stdin, ``.gz`` too)
  to ``.npy`` or JSONL, streamed in chunks, written atomically;
* ``eval``     -- :func:`sse_np.eval.evaluate` on BEIR-layout folders,
  table on stdout, progress on stderr, optional JSON report and plot;
* ``serve``    -- :mod:`sse_np.serve`: the OpenAI-compatible embeddings server;
* ``info``     -- the model (layout, V, D, dtype, tokenizer) and the engine
  (back-end, numba, its cache folder, threads);
* ``download`` -- :func:`sse_np.download` from the Hugging Face hub;
* ``warmup``   -- load (compiling once) the numba kernels, e.g. while
  building a container image, so later processes start warm;
* ``quantize`` -- write a model in the 4-bit layout;
* ``bench``    -- run the benchmark suite of a source checkout (``bench/``).

``--model`` defaults to :func:`sse_np.default_model` (the repository's
``weights/`` folder, the installed copy, or ``$SSE_NP_MODEL``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import streams
from .errors import DataError

from .eval import DEFAULT_DIMS, evaluate, format_report, model_info, plot_report, require_matplotlib, save_report

PROG = "sse-np"


def _load_model(path: str | None, threads: int | None = None) -> Any:
    import sse_np

    model = sse_np.default_model() if path is None else sse_np.load(path)
    if threads is not None:
        model.threads = threads
    return model


def _version() -> str:
    import sse_np

    return str(getattr(sse_np, "__version__", "unknown"))


def _parse_dims(text: str) -> list[int]:
    """Parse ``"512,256,128"`` into ints (argparse type)."""
    try:
        dims = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return dims


def _parse_precisions(text: str) -> list[str]:
    """Parse ``"float32,int8,binary"`` (argparse type)."""
    from .quantization import PRECISIONS

    names = [part.strip() for part in text.split(",") if part.strip()]
    bad = [n for n in names if n not in PRECISIONS]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"expected precisions from {', '.join(PRECISIONS)}, got {text!r}")
    return names


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _dataset_files(folders: Sequence[str], split: str) -> list[Path]:
    """The files ``eval`` reads (outputs must not be one of them)."""
    names = ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv")
    return [Path(folder) / name for folder in folders for name in names]


def _write_through(where: streams.Destination, write) -> None:
    """``write(path)`` into a temporary file renamed over the destination when complete (see AtomicOutput)."""
    out = streams.AtomicOutput(where, open_file=False)
    try:
        write(out.path)
        out.commit()
    except BaseException:
        out.abort()  # the destination keeps what it had
        raise


def _cmd_eval(args: argparse.Namespace) -> int:
    # Outputs are checked before the (slow) run, and written atomically after it.
    inputs = _dataset_files(args.data_dirs, args.split)
    outputs = {
        opt: streams.resolve_destination(getattr(args, opt), inputs) for opt in ("json", "plot") if getattr(args, opt)
    }
    if len(outputs) == 2 and not outputs["json"].stream and outputs["json"].target == outputs["plot"].target:
        raise DataError(args.json, "--json and --plot name the same file")
    if args.plot:
        require_matplotlib()  # fail before the slow part, not after it
    model = _load_model(args.model, args.threads)
    report = evaluate(
        model,
        args.data_dirs,
        DEFAULT_DIMS if args.dims is None else args.dims,
        split=args.split,
        batch_size=args.batch_size,
        per_query=args.per_query,
        progress=not args.quiet,
        precisions=args.precision,
    )
    sys.stdout.write(format_report(report))
    if args.json:
        _write_through(outputs["json"], lambda path: save_report(report, path))
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        _write_through(outputs["plot"], lambda path: plot_report(report, path))
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


# How SSEModel.encode's messages name a text: "texts[3] is ..." / "text 3 cannot ...".
_TEXT_INDEX = re.compile(r"\btexts\[(\d+)\]|\btext (\d+)\b")


def _cmd_encode(args: argparse.Namespace) -> int:
    # -- Parquet / Ray (issue 15) --
    if args.ray is not None:
        from .ray_data import run_cli

        return run_cli(args)
    if args.id_field is not None and not args.keep:
        args.keep = args.id_field  # JSONL: the id goes first among the kept fields
    # -- end Parquet / Ray --
    in_fmt = streams.input_format(args.input, args.input_format, args.field)
    out_fmt = streams.output_format(args.output, args.format)
    if out_fmt in ("npy", "parquet") and args.output == "-":
        raise DataError(
            "-", f"{out_fmt} output needs a file (it is completed at the end); use --format jsonl to write to stdout"
        )
    if in_fmt == "lines" and (args.field or args.keep):
        raise DataError(args.input, "--field and --keep apply to JSONL input (--input-format jsonl) or Parquet input")
    # Checked before anything is read or written: an output that is the input is refused.
    where = None if args.output == "-" else streams.resolve_destination(args.output, [args.input])
    keep = tuple(k for k in args.keep.split(",") if k) if args.keep else ("_id", "id")
    if args.id_field is not None and args.id_field not in keep:
        keep = (args.id_field, *keep)
    if out_fmt == "npy":
        keep = ()  # .npy holds vectors only
    if out_fmt == "parquet" and args.precision != "float32":
        raise DataError(args.output, "--precision applies to .npy and JSONL output; Parquet holds float32 vectors")
    model = _load_model(args.model, args.threads)
    if where is not None:  # nor one of the model's files
        streams.resolve_destination(args.output, [p for p in Path(model.path).iterdir() if p.is_file()])
    if args.dim is not None and args.dim > int(model.dim):
        raise ValueError(f"--dim {args.dim} exceeds the model's native dimension {model.dim}")
    dim = model.get_sentence_embedding_dimension() if args.dim is None else args.dim
    quantize = _output_precision(args, model, dim)  # before any output exists: errors leave nothing
    width, dtype = (dim, "<f4") if quantize is None else quantize.shape
    progress = streams.Progress(sys.stderr.isatty() if args.progress is None else args.progress)
    target = None if where is None else streams.AtomicOutput(where)
    if target is not None and out_fmt == "npy" and not target.file.seekable():
        target.abort()
        raise DataError(
            args.output,
            "npy output needs a seekable file (its header is completed at the end), "
            "not a pipe or terminal; use --format jsonl",
        )
    sink = sys.stdout.buffer if target is None else target.file
    name = "<stdin>" if args.input == "-" else args.input
    try:
        if out_fmt == "parquet":  # -- Parquet (issue 15) --
            from .parquet import ParquetWriter

            writer = ParquetWriter(sink, dim)
        else:
            writer = (streams.NpyWriter if out_fmt == "npy" else streams.JsonlWriter)(sink, width, dtype)
        if in_fmt == "parquet":
            from . import parquet

            keep_cols = () if not args.keep else keep  # default: the id column alone
            chunks = parquet.read_chunks(
                args.input,
                streams.split_fields(args.field or "text"),
                keep_cols,
                args.id_field,
                chunk_rows=args.batch_size,
                progress=progress,
            )
        else:  # -- end Parquet --
            chunks = streams.read_chunks(
                args.input, in_fmt, args.field or "text", keep, chunk_lines=args.batch_size, progress=progress
            )
        for chunk in chunks:
            name = getattr(chunk, "source", name)  # a folder of Parquet files: the file at hand
            try:
                vectors = model.encode(chunk.texts, dim, batch_size=args.batch_size, normalize=not args.no_normalize)
            except (TypeError, ValueError) as exc:  # names text i of this chunk: say which line instead
                found = _TEXT_INDEX.search(str(exc))
                if not found:
                    raise
                line = chunk.lines[int(found.group(1) or found.group(2))]
                raise DataError(name, _TEXT_INDEX.sub("the text", str(exc), count=1), line) from None
            if quantize is not None:
                vectors = quantize(vectors)
            writer.write(vectors, chunk.kept if in_fmt != "lines" else None)
            progress.update(writer.rows)
        writer.close()
        progress.update(writer.rows, final=True)
        if target is not None:
            target.commit()
    except BaseException:
        if target is not None:
            target.abort()  # the destination keeps what it had
        raise
    finally:
        progress.close()
    where = "stdout" if target is None else args.output
    kind = "float32" if quantize is None else f"{args.precision} ({np.dtype(dtype).name}, dim {dim})"
    print(f"wrote {writer.rows} x {width} {kind} ({out_fmt}) to {where}", file=sys.stderr)
    return 0


class _Quantizer:
    """``--precision``: the same codes for every chunk of a stream (fixed int8/uint8 ranges)."""

    def __init__(self, precision: str, ranges: Any, dim: int) -> None:
        from .quantization import bytes_per_vector

        self.precision, self.ranges = precision, ranges
        binary = precision in ("binary", "ubinary")
        self.shape = (
            bytes_per_vector(dim, precision) if binary else dim,
            "|i1" if precision in ("int8", "binary") else "|u1",
        )

    def __call__(self, vectors: Any) -> Any:
        from .quantization import quantize_embeddings

        return quantize_embeddings(vectors, self.precision, ranges=self.ranges)


def _output_precision(args: argparse.Namespace, model: Any, dim: int) -> _Quantizer | None:
    """The quantizer ``--precision`` asks for (None: float32), its int8/uint8 ranges settled first."""
    precision = args.precision
    if precision == "float32":
        if args.ranges or args.calibration:
            raise DataError(
                args.ranges or args.calibration, "--ranges/--calibration apply to --precision int8 or uint8"
            )
        return None
    ranges = None
    if precision in ("int8", "uint8"):
        if args.ranges:
            try:
                ranges = np.load(args.ranges, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DataError(args.ranges, f"cannot read ranges ({exc})") from None
            if ranges.shape != (2, dim) or not np.isfinite(ranges).all():
                raise DataError(
                    args.ranges,
                    f"ranges must be a finite (2, {dim}) array (min; max per dimension), got shape {ranges.shape}",
                )
        elif args.calibration:
            texts = []
            for chunk in streams.read_chunks(args.calibration, "lines"):
                texts.extend(chunk.texts)
            if len(texts) < 2:
                raise DataError(args.calibration, "needs at least two texts to calibrate int8/uint8 ranges")
            from .quantization import quantization_ranges

            ranges = quantization_ranges(model.encode(texts, dim, normalize=not args.no_normalize))
        else:
            raise DataError(
                args.output,
                f"--precision {precision} needs fixed ranges for every chunk of the stream: "
                "pass --ranges RANGES.npy (a (2, dim) array) or --calibration TEXTS "
                "(a file of representative texts, one per line)",
            )
    return _Quantizer(precision, ranges, dim)


def _cmd_quantize(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from .convert import save_q4
    from .loading import FULL_FILE, MODULES_FILE, Q4_FILE, REST_FILE, TOKENIZER_FILE

    model = _load_model(args.model)
    dest = Path(os.path.realpath(args.output))
    sources = {Path(model.path).resolve()}
    if args.model is not None and Path(args.model).exists():
        sources.add(Path(args.model).resolve())
    for source in sorted(sources):
        if source == dest or source.is_relative_to(dest):
            raise DataError(
                args.output,
                f"is the model folder {source}"
                + ("" if source == dest else " or holds it")
                + "; writing there would mix two layouts; name a new folder",
            )
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
        if not dest.exists():
            os.rename(tmp, dest)
        else:
            for name in (REST_FILE, Q4_FILE, TOKENIZER_FILE):
                os.replace(tmp / name, dest / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote the 4-bit layout of {model.path} to {args.output}", file=sys.stderr)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    info = _info(_load_model(args.model), warm=args.warmup)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        print(f"{key:<16}{value}")
    return 0


def _info(model: Any, warm: bool = False) -> dict[str, Any]:
    """The model and engine facts ``sse-np info`` prints."""
    from importlib import metadata

    from . import engine

    info = model_info(model)
    info = {
        "path": info["path"],
        "layout": info["layout"],
        "vocab_size (V)": info["vocab_size"],
        "dim (D)": info["dim"],
        "dtype": info["dtype"],
    }
    info["table bytes"] = int(model.table.data.nbytes)
    trunc = model.tokenizer.truncation
    tokenizer = model.engine.tokenizer
    info["tokenizer"] = {
        "vocab": model.tokenizer.get_vocab_size(with_added_tokens=True),
        "lowercase": _lowercases(model.tokenizer),
        "truncation": f"{trunc['max_length']} tokens, keep {'end' if trunc.get('direction') == 'left' else 'start'}"
        if trunc
        else "off",
        "numba fast path": "supported" if tokenizer.fast_spec is not None else "not supported (tokenizers)",
        "chunk cache": f"{tokenizer.cache_bytes:,} bytes at most",
    }
    try:
        numba_version = metadata.version("numba")
    except metadata.PackageNotFoundError:
        numba_version = None
    if warm:
        model.warmup()
    status = model.engine.status
    info["backend"] = model.backend + (f" (now: {status})" if status != model.backend else "")
    info["numba"] = (
        "off (SSE_NP_DISABLE_NUMBA)"
        if engine.numba_disabled_by_env()
        else numba_version or "not installed (NumPy back-end)"
    )
    info["numba cache"] = _numba_cache() if model.engine.status == "numba" else None
    info["threads"] = model.threads if model.threads is not None else f"all cores ({model._threads()})"
    info["sse_np"] = _version()
    return info


def _numba_cache() -> str | None:
    import numba

    from .engine import cache

    return cache.cache_dir(numba)


def _lowercases(tokenizer) -> bool | None:
    normalizer = json.loads(tokenizer.to_str()).get("normalizer") or {}
    return normalizer.get("lowercase") if normalizer.get("type") == "BertNormalizer" else None


def _cmd_warmup(args: argparse.Namespace) -> int:
    model = _load_model(args.model, args.threads)
    backend = model.warmup()
    where = _numba_cache() if backend == "numba" else None
    print(f"backend {backend}" + (f"; numba kernels cached in {where}" if where else ""))
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from .hub import download

    path = download(args.repo_id, revision=args.revision, local_dir=args.dir, force=args.force)
    print(path)  # stdout: usable as MODEL=$(sse-np download ...)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    script = Path(__file__).resolve().parent.parent / "bench" / "run.py"
    if not script.is_file():
        raise FileNotFoundError(
            "the benchmark suite is in the source repository's bench/ folder (it needs the peers in "
            "bench/requirements.txt); run `sse-np bench` from a checkout installed with `pip install -e .`"
        )
    return subprocess.call([sys.executable, str(script), *args.bench_args], cwd=script.parent.parent)


def _add_model_args(parser: argparse.ArgumentParser, threads: bool = False) -> None:
    """``--model`` (and ``--threads``), the same on every subcommand."""
    parser.add_argument(
        "--model",
        default=None,
        help="model folder or Hugging Face repo id (default: sse_np.default_model(), i.e. $SSE_NP_MODEL or weights/)",
    )
    if threads:
        parser.add_argument(
            "--threads",
            type=_positive_int,
            default=None,
            help="most threads for encoding; 1 never starts a pool (default: $SSE_NP_THREADS, else all cores)",
        )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sse-np`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog=PROG, description="SSE static embeddings on CPU (NumPy + numba).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="{encode,eval,info,download,warmup,quantize,bench,serve}")
    sub.required = True

    p_eval = sub.add_parser(
        "eval",
        help="retrieval evaluation (nDCG@10, MRR@10, MAP@100, Recall@100) per dimension",
        description="Evaluate retrieval on BEIR-layout folders (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).",
    )
    p_eval.add_argument("data_dirs", nargs="+", metavar="DATA_DIR", help="BEIR-layout dataset folder(s)")
    p_eval.add_argument(
        "--dims",
        type=_parse_dims,
        default=None,
        help="comma-separated Matryoshka dimensions (default: 512,256,128,64,32, those <= the model's D)",
    )
    _add_model_args(p_eval, threads=True)
    p_eval.add_argument("--json", metavar="OUT.json", help="write the full report as JSON")
    p_eval.add_argument("--plot", metavar="OUT.png", help="plot nDCG@10 vs dimension (needs the 'plot' extra)")
    p_eval.add_argument("--split", default="test", help="qrels split file, qrels/<SPLIT>.tsv (default: test)")
    p_eval.add_argument("--batch-size", type=_positive_int, default=1024, help="encode batch size (default: 1024)")
    p_eval.add_argument("--per-query", action="store_true", help="include per-query metrics and runs in the JSON")
    p_eval.add_argument(
        "--precision",
        type=_parse_precisions,
        default=["float32"],
        metavar="P1,P2",
        help="vector precisions to evaluate, e.g. float32,int8,binary (float32, int8, uint8, "
        "binary, ubinary; default float32); the table adds bytes per document",
    )
    p_eval.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    p_eval.set_defaults(func=_cmd_eval)

    p_enc = sub.add_parser(
        "encode",
        help="encode texts (plain lines or JSONL) to .npy or JSONL",
        description="Encode texts from INPUT (a file, .gz too, or - for stdin) into OUT, streaming in chunks. "
        "Input: one text per line, or JSONL objects with the text in --field. Output: a float32 "
        '.npy array (row i = record i), or JSONL with an "embedding" per record. OUT is written '
        "to a temporary file and renamed when complete, so an error never leaves a partial file; "
        "an OUT that is the input is refused, a symlink's target is replaced (the link stays), and "
        "a device or pipe (/dev/null, /dev/stdout, a FIFO) is written through.",
    )
    p_enc.add_argument(
        "input",
        nargs="?",
        default="-",
        metavar="INPUT",
        help="text, JSONL or Parquet file, a folder of Parquet files, or - for stdin (default)",
    )
    p_enc.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output file (.npy, .jsonl or .parquet), or - for JSONL on stdout",
    )
    p_enc.add_argument(
        "--format",
        choices=streams.OUTPUT_FORMATS,
        default=None,
        help="output format (default: from OUT's suffix; - is jsonl)",
    )
    p_enc.add_argument(
        "--input-format",
        choices=streams.INPUT_FORMATS,
        default=None,
        help="input format (default: jsonl for *.jsonl/*.ndjson or with --field, else lines)",
    )
    p_enc.add_argument(
        "--field",
        default=None,
        metavar="F[,F2]",
        help="JSONL field or Parquet column holding the text (default: text); several are joined "
        "as the evaluation joins a document: title,text -> (title + ' ' + text).strip()",
    )
    p_enc.add_argument(
        "--keep",
        default=None,
        metavar="F1,F2",
        help="JSONL fields / Parquet columns copied into JSONL or Parquet output (default: the id)",
    )
    p_enc.add_argument(
        "--id-field",
        default=None,
        metavar="F",
        help="id field, written first in JSONL/Parquet output (default: _id or id when present)",
    )
    p_enc.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run on Ray (the 'ray' extra): INPUT is a Parquet file or folder, OUT a folder with "
        "one Parquet file per input file; resumable. Without ADDRESS: a local cluster",
    )
    p_enc.add_argument(
        "--actors",
        type=_positive_int,
        default=None,
        help="with --ray: encoding actors (default: the cluster's CPUs / --threads)",
    )
    p_enc.add_argument(
        "--dim",
        type=_positive_int,
        default=None,
        help="Matryoshka dimension (default: the model's truncate_dim, else its full width D)",
    )
    _add_model_args(p_enc, threads=True)
    p_enc.add_argument("--batch-size", type=_positive_int, default=1024, help="encode batch size (default: 1024)")
    p_enc.add_argument("--no-normalize", action="store_true", help="keep raw (unnormalised) vectors")
    p_enc.add_argument(
        "--precision",
        choices=("float32", "int8", "uint8", "binary", "ubinary"),
        default="float32",
        help="quantized output, as sentence-transformers' quantize_embeddings: int8/uint8 codes "
        "(need --ranges or --calibration) or packed sign bits (binary: int8, ubinary: uint8; "
        "dim/8 bytes a row); default float32",
    )
    p_enc.add_argument(
        "--ranges", default=None, metavar="RANGES.npy", help="int8/uint8: per-dimension [min; max] as a (2, dim) .npy"
    )
    p_enc.add_argument(
        "--calibration",
        default=None,
        metavar="TEXTS",
        help="int8/uint8: a file of representative texts (one per line) to take the ranges from",
    )
    p_enc.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress on stderr (default: when stderr is a terminal)",
    )
    p_enc.set_defaults(func=_cmd_encode)

    p_q4 = sub.add_parser(
        "quantize",
        help="write a full-precision model in the 4-bit layout",
        description="Quantize a model's table to the SSE 4-bit layout (model_rest.safetensors + embedding.q4_k_m.bin).",
    )
    p_q4.add_argument("output", metavar="OUT_DIR", help="folder to write (created)")
    _add_model_args(p_q4)
    p_q4.set_defaults(func=_cmd_quantize)

    p_info = sub.add_parser(
        "info",
        help="show the model (layout, V, D, dtype, tokenizer) and the engine",
        description="Show the model and engine: layout, V, D, dtype, tokenizer settings, "
        "back-end, numba version and cache folder, threads.",
    )
    _add_model_args(p_info)
    p_info.add_argument("--json", action="store_true", help="print JSON")
    p_info.add_argument("--warmup", action="store_true", help="load the numba kernels first")
    p_info.set_defaults(func=_cmd_info)

    p_dl = sub.add_parser(
        "download",
        help="fetch an SSE model from the Hugging Face hub",
        description="Fetch the files of an SSE model repository into the Hugging Face cache ($HF_HOME/hub, "
        "shared with other HF tools) or into --dir; prints the local folder. Honours HF_ENDPOINT, "
        "HF_HUB_OFFLINE, HF_HOME, HF_HUB_CACHE and HF_TOKEN; sizes are checked against the repository "
        "listing; a dropped connection resumes, and files already fetched are kept.",
    )
    p_dl.add_argument("repo_id", metavar="REPO_ID", help="owner/name on the hub")
    p_dl.add_argument("--revision", default="main", help="branch, tag or commit (default: main)")
    p_dl.add_argument("--dir", default=None, metavar="DIR", help="put the files in DIR instead of the cache")
    p_dl.add_argument("--force", action="store_true", help="download again even if cached")
    p_dl.set_defaults(func=_cmd_download)

    p_warm = sub.add_parser(
        "warmup",
        help="load (compiling once) the numba kernels, e.g. while building an image",
        description="Load the model's numba kernels, compiling them into numba's cache the first time, so "
        "that later processes start warm (run it in a Dockerfile after installing).",
    )
    _add_model_args(p_warm, threads=True)
    p_warm.set_defaults(func=_cmd_warmup)

    p_bench = sub.add_parser(
        "bench",
        help="run the benchmark suite (source checkout: bench/run.py)",
        description="Run bench/run.py of a source checkout with these arguments (see bench/README in the "
        "repository; peers come from bench/requirements.txt). E.g. sse-np bench --quick.",
        add_help=False,
    )
    p_bench.set_defaults(func=_cmd_bench)  # every argument after "bench" goes to bench/run.py
    _add_serve_parser(sub)
    return parser


def _show_notices() -> None:
    """The library's one-line notices (e.g. that kernels compile, once) on stderr, as ``sse-np: ...``."""
    import logging

    log = logging.getLogger("sse_np")
    if not any(getattr(h, "_sse_np_cli", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
        handler._sse_np_cli = True
        log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)


# --------------------------------------------------------------------------- serve (issue 14)
# Kept in one block: the parser and the command of ``sse-np serve`` (sse_np.serve does the work).


def _add_serve_parser(sub: Any) -> None:
    """``sse-np serve``: the OpenAI-compatible embeddings server (needs the 'serve' extra)."""
    p = sub.add_parser(
        "serve",
        help="serve embeddings over HTTP (OpenAI /v1/embeddings, TEI /embed)",
        description="Serve models over HTTP: POST /v1/embeddings (OpenAI), POST /embed (text-embeddings-"
        "inference), GET /v1/models, /health, /metrics (Prometheus). With one model, any "
        "request's model name reaches it (unless --strict-model); with several, `model` picks "
        "one. SIGTERM: requests in flight finish, new ones get 503. Needs the 'serve' extra.",
    )
    p.add_argument(
        "--model",
        action="append",
        default=None,
        metavar="PATH_OR_HUB_ID|NAME=PATH",
        help="a model to serve, repeatable; NAME=PATH names it (default: the default model, "
        "named 'default'; a path is named by its folder, a hub id by itself)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=_positive_int, default=8080, help="port (default: 8080)")
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="processes (default: 1); each loads the models, whose tables are memory-mapped",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="encode calls at once per process, and most threads per call (default: the cores)",
    )
    p.add_argument(
        "--max-inputs", type=_positive_int, default=None, help="most texts per request, else 413 (default: 2048)"
    )
    p.add_argument(
        "--max-text-chars",
        type=_positive_int,
        default=None,
        help="most characters per text, else 413 (default: 200000)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=None,
        help="most bytes per request body, else 413 (default: 33554432 (32 MiB))",
    )
    p.add_argument("--strict-model", action="store_true", help="with one model, answer 404 to other model names too")
    p.add_argument(
        "--inline-chars",
        type=int,
        default=None,
        metavar="N",
        help="encode requests of at most N characters on the event loop, larger ones in the "
        "thread pool; 0: all in the pool (default: 512)",
    )
    p.add_argument(
        "--no-batching",
        dest="batching",
        action="store_false",
        help="encode each small request alone (default: those ready together as one call)",
    )
    p.add_argument(
        "--backend",
        choices=("auto", "numba", "numpy"),
        default=None,
        help="engine back-end (default: $SSE_NP_BACKEND or auto)",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="server log level (default: info)",
    )
    p.set_defaults(func=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    from . import serve  # ImportError names the 'serve' extra when starlette/uvicorn are missing

    limits = {
        key: getattr(args, key)
        for key in ("max_inputs", "max_text_chars", "max_body_bytes", "inline_chars")
        if getattr(args, key) is not None
    }  # unset: the defaults of sse_np.serve
    config = serve.ServeConfig(
        models=list(args.model or []),
        threads=args.threads,
        strict_model=args.strict_model,
        batching=args.batching,
        backend=args.backend,
        **limits,
    )
    serve.run(config, host=args.host, port=args.port, workers=args.workers, log_level=args.log_level)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 error, 2 usage).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    _show_notices()
    if args.command == "bench":
        args.bench_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args))
    except BrokenPipeError:  # e.g. `sse-np encode ... -o - | head`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, ImportError) as exc:
        # DataError, ModelLoadError (ValueError subclasses), missing files
        # and a missing optional extra: one clear line instead of a traceback.
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except RecursionError:  # Python's json on input nested too deeply, wherever it is read
        print(f"{PROG}: error: input nested too deeply to read (RecursionError)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

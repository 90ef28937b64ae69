"""The ``sse-np`` argument parser; each command's module is imported only when it runs."""

from __future__ import annotations

import argparse
from typing import Any

from .._version import __version__
from ..bulk.readers import INPUT_FORMATS
from ..bulk.writers import OUTPUT_FORMATS
from .arguments import _add_model_args, _parse_dims, _parse_precisions, _positive_int
from .parser_servers import _add_bench_parser, _add_serve_parser

# sse_np.index.lexical.STEMMERS and LEXICAL, written out so that parsing imports no index code (a test ties them).
_STEMMERS = ("english",)
_STEMMER_HELP = "BM25 over Snowball stems of whole words (needs the 'stem' extra; default: no stemming)"
_LEXICAL = ("pieces", "words", "words+pieces")
_LEXICAL_HELP = (
    "BM25 tokens: whole words and the model's WordPiece ids in one bag (the default; words with --stemmer), "
    "words alone, or pieces alone (--stemmer needs words)"
)

PROG = "sse-np"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sse-np`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog=PROG, description="SSE static embeddings on CPU (NumPy + numba).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{encode,eval,index,info,download,warmup,quantize,bench,serve}")
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
    p_eval.add_argument(
        "--retrieval",
        default=None,
        metavar="MODES",
        help="also rank with sse_np.Index modes, e.g. dense,bm25,hybrid: one table per mode",
    )
    p_eval.add_argument(
        "--hybrid-weight", type=float, default=None, help="dense weight of hybrid fusion (default: the index's)"
    )
    p_eval.add_argument("--lexical", choices=_LEXICAL, default=None, help=_LEXICAL_HELP)
    p_eval.add_argument("--stemmer", choices=_STEMMERS, default=None, help=_STEMMER_HELP)
    p_eval.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    p_eval.set_defaults(func=_eval)

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
        choices=OUTPUT_FORMATS,
        default=None,
        help="output format (default: from OUT's suffix; - is jsonl)",
    )
    p_enc.add_argument(
        "--input-format",
        choices=INPUT_FORMATS,
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
        help="JSONL fields / Parquet columns copied into JSONL or Parquet output, after the id (always kept)",
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
    p_enc.add_argument(
        "--no-normalize",
        action="store_true",
        help="keep raw (unnormalised) vectors (default: the model's own; SSE and normalizing models: normalized)",
    )
    p_enc.add_argument(
        "--max-length",
        type=_positive_int,
        default=None,
        help="keep each text's first N tokens (default: the model's own; model2vec: 512, others: all)",
    )
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
    p_enc.set_defaults(func=_encode)
    _add_index(sub)

    p_q4 = sub.add_parser(
        "quantize",
        help="write a full-precision model in the 4-bit layout",
        description="Quantize a model's table to the SSE 4-bit layout (model_rest.safetensors + embedding.q4_k_m.bin).",
    )
    p_q4.add_argument("output", metavar="OUT_DIR", help="folder to write (created)")
    _add_model_args(p_q4)
    p_q4.set_defaults(func=_quantize)

    p_info = sub.add_parser(
        "info",
        help="show the model (layout, V, D, dtype, tokenizer) and the engine",
        description="Show the model and engine: layout, V, D, dtype, tokenizer settings, "
        "back-end, numba version and cache folder, threads.",
    )
    _add_model_args(p_info)
    p_info.add_argument("--json", action="store_true", help="print JSON")
    p_info.add_argument("--warmup", action="store_true", help="load the numba kernels first")
    p_info.set_defaults(func=_info)

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
    p_dl.set_defaults(func=_download)

    p_warm = sub.add_parser(
        "warmup",
        help="load (compiling once) the numba kernels, e.g. while building an image",
        description="Load the model's numba kernels, compiling them into numba's cache the first time, so "
        "that later processes start warm (run it in a Dockerfile after installing).",
    )
    _add_model_args(p_warm, threads=True)
    p_warm.set_defaults(func=_warmup)

    _add_bench_parser(sub)
    _add_serve_parser(sub)
    return parser


def _add_index(sub: Any) -> None:
    """``sse-np index build`` and ``sse-np index search`` (sse_np.Index)."""
    p = sub.add_parser("index", help="build and search a local index (dense, BM25, hybrid)")
    isub = p.add_subparsers(dest="index_command", required=True, metavar="{build,search}")
    b = isub.add_parser("build", help="index a corpus (lines, JSONL or Parquet) into a folder")
    b.add_argument("input", metavar="CORPUS", help="text, JSONL or Parquet file (or a folder of Parquet files)")
    b.add_argument("-o", "--output", required=True, metavar="DIR", help="index folder (written atomically)")
    b.add_argument("--input-format", choices=INPUT_FORMATS, default=None, help="default: from the suffix")
    b.add_argument("--field", default=None, help="JSONL/Parquet text field(s), comma-joined (default: text)")
    b.add_argument("--id-field", default=None, help="JSONL/Parquet field with the document id (default: row number)")
    b.add_argument("--dim", type=_positive_int, default=None, help="stored vector width (default: the model's)")
    b.add_argument("--precision", choices=("float32", "int8", "uint8", "binary", "ubinary"), default="float32")
    b.add_argument("--no-stopwords", action="store_true", help="keep English stopwords in BM25")
    b.add_argument("--lexical", choices=_LEXICAL, default=None, help=_LEXICAL_HELP)
    b.add_argument("--stemmer", choices=_STEMMERS, default=None, help=_STEMMER_HELP)
    b.add_argument("--batch-size", type=_positive_int, default=1024, help="records per chunk (default: 1024)")
    b.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="default: on a terminal")
    _add_model_args(b, threads=True)
    b.set_defaults(func=_index)
    s = isub.add_parser("search", help="search an index folder")
    s.add_argument("index_dir", metavar="DIR")
    s.add_argument("query", nargs="+", metavar="QUERY", help="one or more queries")
    s.add_argument("--k", type=_positive_int, default=10, help="results per query (default: 10)")
    s.add_argument("--mode", choices=("dense", "bm25", "hybrid"), default="hybrid", help="default: hybrid")
    s.add_argument("--dim", type=_positive_int, default=None, help="narrower Matryoshka prefix (float32 indexes)")
    s.add_argument("--json", action="store_true", help="print JSON (a list of hits per query)")
    _add_model_args(s, threads=True)
    s.set_defaults(func=_index)


# Each command's module is imported only when that command runs (`sse-np encode` never loads the
# evaluation, `sse-np info` never the server).
def _encode(args: argparse.Namespace) -> int:
    from .encode import run

    return run(args)


def _eval(args: argparse.Namespace) -> int:
    from .evaluate import run

    return run(args)


def _index(args: argparse.Namespace) -> int:
    from .index import run

    return run(args)


def _info(args: argparse.Namespace) -> int:
    from .info import info

    return info(args)


def _warmup(args: argparse.Namespace) -> int:
    from .info import warmup

    return warmup(args)


def _quantize(args: argparse.Namespace) -> int:
    from .models import quantize

    return quantize(args)


def _download(args: argparse.Namespace) -> int:
    from .models import download

    return download(args)

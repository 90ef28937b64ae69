"""Argument types and the options every ``sse-np`` subcommand shares (argparse)."""

from __future__ import annotations

import argparse


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
    from ..retrieval.quantization import PRECISIONS

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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


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

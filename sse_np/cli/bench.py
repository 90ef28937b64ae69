"""``sse-np bench``: :mod:`sse_np.bench` on this machine, table on stdout, progress on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..bench import Options, run, run_http
from ..bench.report import compare, render, render_compare
from ..errors import DataError
from ..progress import Progress


def run_command(args: argparse.Namespace) -> int:
    """Measure, print the table, write ``--json``, print ``--compare``."""
    if args.duration <= 0:
        raise ValueError(f"--duration must be positive, got {args.duration}")
    old = _read_json(Path(args.compare)) if args.compare else None
    if args.json and not Path(args.json).resolve().parent.is_dir():  # said now, not after the whole run
        raise FileNotFoundError(f"--json {args.json}: its folder does not exist")
    opts = Options(
        model=args.model,
        data=args.data,
        dim=args.dim,
        duration=args.duration,
        repeats=args.repeats,
        threads=args.threads,
        backend=args.backend,
        peers=args.peers,
        url=args.url,
        http_model=args.http_model,
        concurrency=tuple(args.concurrency),
        max_requests=args.max_requests,
        use_wrk=not args.no_wrk,
    )
    enabled = sys.stderr.isatty() if args.progress is None else args.progress
    with Progress(desc="bench", unit="steps", enabled=enabled) as progress:
        result = run_http(opts, progress) if opts.url else run(opts, progress)
    print(render(result), end="")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    if old is not None:
        print()
        print(render_compare(compare(old, result)), end="")
    return 0


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(path, f"cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise DataError(path, f"not JSON ({exc})") from None
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("sse_np.bench/"):
        raise DataError(path, "not an `sse-np bench --json` file (no 'schema': 'sse_np.bench/...')")
    return data

"""``sse-np bench``: the benchmark suite of a source checkout (``bench/run.py``)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    """Run ``bench/run.py`` of the checkout this package was installed from, with the arguments given."""
    script = Path(__file__).resolve().parents[2] / "bench" / "run.py"
    if not script.is_file():
        raise FileNotFoundError(
            "the benchmark suite is in the source repository's bench/ folder (it needs the peers in "
            "bench/requirements.txt); run `sse-np bench` from a checkout installed with `pip install -e .`"
        )
    return subprocess.call([sys.executable, str(script), *args.bench_args], cwd=script.parent.parent)

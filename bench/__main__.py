"""Entry point for ``python -m bench`` (same options as ``bench/run.py``)."""

from bench.run import main

if __name__ == "__main__":
    raise SystemExit(main())

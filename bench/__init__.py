"""Benchmark suite for sse_np against its peers (see bench/run.py).

Kept import-light on purpose: the cold-start worker times Python imports, so
this package must not pull in numpy or any engine when it is imported.
"""

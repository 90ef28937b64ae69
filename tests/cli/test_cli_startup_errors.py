"""One-line errors found trying the README as a new user (issue 27 item 23): a port in use, ``eval`` given a
file, and the Lambda runner piped into ``head``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import sse_np.eval
from helpers.cli import fails
from helpers.models import make_random_model
from helpers.paths import REPO


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("startup_model"), dim=8, seed=9)


def test_port_in_use_is_one_line(capsys, model_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        fails(
            capsys,
            ["serve", "--port", str(port), "--model", str(model_dir)],
            rf"cannot listen on 127\.0\.0\.1:{port}: Address already in use",
        )


def test_eval_on_a_file_says_it_wants_the_folder(capsys, tmp_path, model_dir):
    tiny = sse_np.eval.write_beir(tmp_path / "tiny", {"d1": "cats purr"}, {"q1": "cats"}, {"q1": {"d1": 1}})
    fails(
        capsys,
        ["eval", str(tiny / "corpus.jsonl"), "--model", str(model_dir), "-q"],
        rf"corpus\.jsonl: is a file; eval takes a BEIR dataset folder .*: try {tiny}$",
    )


def test_lambda_runner_into_a_closed_pipe_is_quiet(tmp_path, model_dir):
    """``python examples/lambda_handler.py event.json | head -c0``: the reader is gone before the answer."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"texts": ["hello"], "dim": 8}))
    read, write = os.pipe()
    os.close(read)  # the reader has exited: every write gets EPIPE
    try:
        done = subprocess.run(
            [sys.executable, str(REPO / "examples" / "lambda_handler.py"), str(event)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "SSE_NP_MODEL": str(model_dir), "SSE_NP_BACKEND": "numpy"},
            timeout=300,
        )
    finally:
        os.close(write)
    assert done.stderr == "", done.stderr
    assert done.returncode == 0

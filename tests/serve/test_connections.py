"""Idle and slowloris connections (issue 27 item 10): closed at ``--client-timeout``, evicted at
``--max-connections``, and ``/health`` answers throughout.

No wall-clock threshold: each test waits for the event itself (the server closing a socket), with
a hang guard only. Timeouts are configured short so that the events come soon.
"""

from __future__ import annotations

import threading

import httpx
import pytest

pytest.importorskip("uvicorn", reason="the 'serve' extra is not installed")

from helpers.models import make_random_model
from helpers.server import Server, closed_by_server, still_open


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_random_model(tmp_path_factory.mktemp("conn") / "m", dim=16, seed=8)


def test_idle_and_slowloris_connections_are_closed_and_health_answers(model, tmp_path) -> None:
    with Server(["--model", str(model), "--client-timeout", "1", "--max-connections", "30"], tmp_path) as srv:
        idle = [srv.connect() for _ in range(10)]  # connect, send nothing
        half = [srv.connect() for _ in range(10)]  # half a request head, never finished
        for sock in half:
            sock.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Le")
        # a request whose body never comes
        no_body = srv.connect()
        no_body.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        # keep-alive after one answered request, then nothing
        kept = srv.connect()
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" in kept.recv(4096)
        # a slowloris trickling one header byte at a time: bytes received do not move its deadline
        trickler = srv.connect()
        stop = threading.Event()

        def trickle() -> None:
            try:
                trickler.sendall(b"GET /health HTTP/1.1\r\n")
                while not stop.wait(0.05):
                    trickler.sendall(b"X")
            except OSError:  # closed by the server: what the test waits for
                pass

        thread = threading.Thread(target=trickle)
        thread.start()
        try:
            for _ in range(3):  # /health answers while they are held
                assert httpx.get(srv.url + "/health").status_code == 200
            for sock in [*idle, *half, no_body, kept, trickler]:
                assert closed_by_server(sock)
        finally:
            stop.set()
            thread.join()
        assert httpx.get(srv.url + "/health").status_code == 200


def test_a_request_being_answered_is_not_cut(model, tmp_path) -> None:
    """A request whose answer takes longer than the client timeout still gets it (the client did its part)."""
    args = ["--model", str(model), "--client-timeout", "0.2", "--max-text-chars", "9000000"]
    with Server(args, tmp_path) as srv:
        texts = ["word " * 1_000_000] * 4  # a few seconds of encoding on this machine, more than 0.2 s
        resp = httpx.post(srv.url + "/v1/embeddings", json={"input": texts}, timeout=600)
        assert resp.status_code == 200 and len(resp.json()["data"]) == 4


def test_at_the_cap_a_new_connection_evicts_the_longest_idle(model, tmp_path) -> None:
    args = ["--model", str(model), "--client-timeout", "600", "--max-connections", "4"]
    with Server(args, tmp_path) as srv:
        held: list = []

        def hold() -> None:
            held.append(srv.connect())
            # answered before the next connects: the eviction order is this order
            held[-1].sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"200 OK" in held[-1].recv(4096)

        for _ in range(4):
            hold()
        assert httpx.get(srv.url + "/health").status_code == 200  # the 5th: evicts the first
        assert closed_by_server(held[0])
        assert all(still_open(sock) for sock in held[1:])
        hold()  # at the cap again: 3 left + this one
        assert httpx.get(srv.url + "/health").status_code == 200  # evicts the second
        assert closed_by_server(held[1])
        assert all(still_open(sock) for sock in held[2:])


def test_the_descriptor_limit_is_raised_for_the_cap(model, tmp_path) -> None:
    """--max-connections beyond the hard descriptor limit is refused at start with one line."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 2**20
    with pytest.raises(RuntimeError, match="file descriptors, the hard limit is"):
        Server(["--model", str(model), "--max-connections", str(hard)], tmp_path)

"""A client that sends its request head slowly is cut off, and everyone else is still served
(review L7; backend/web/httpguard.py). Before: 300 connections that each sent half a request head
were all still held after 20 s (uvicorn has no deadline for the head)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.server import Server

HALF_A_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


@pytest.fixture
def server(tmp_path):
    with Server(tmp_path / "pw.db", env={"PIJNWACHT_HEADER_TIMEOUT_SECONDS": "2"}) as s:
        yield s


def closed_by_server(sock: socket.socket, wait: float) -> bool:
    sock.settimeout(wait)
    try:
        return sock.recv(1024) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_300_half_sent_request_heads_are_dropped_within_seconds(server):
    socks = []
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(HALF_A_HEAD)
            socks.append(s)
        started = time.monotonic()
        # While they hang, the server answers others at once.
        r = httpx.get(server.url + "/healthz", timeout=2)
        assert r.status_code == 200
        # A byte now and then does not keep a head alive.
        for s in socks[:50]:
            s.sendall(b"x")
        assert all(closed_by_server(s, 8) for s in socks)
        assert time.monotonic() - started < 8
    finally:
        for s in socks:
            s.close()


def test_a_slow_second_request_on_a_kept_alive_connection_is_dropped_too(server):
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        s.settimeout(5)
        answer = b""
        while b'"ok"}' not in answer:  # head and body may come in separate packets
            answer += s.recv(4096)
        assert b"200 OK" in answer
        s.sendall(HALF_A_HEAD)
        started = time.monotonic()
        assert closed_by_server(s, 8)
        assert time.monotonic() - started < 6


def test_a_request_sent_in_pieces_within_the_deadline_is_answered(server):
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        for piece in (b"GET /healthz HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n", b"Connection: close\r\n\r\n"):
            s.sendall(piece)
            time.sleep(0.3)
        s.settimeout(3)
        assert b"200 OK" in s.recv(4096)

"""The real web process (manage.py serve -> assistant/server.py) answers an overlong request
line with 414 and an overlong header with 431, as JSON, instead of dropping the connection."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.servers import running_server

pytestmark = pytest.mark.django_db(transaction=True)


def _raw(url: str, request: bytes) -> tuple[int, dict]:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as conn:
        conn.sendall(request)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_an_overlong_url_gets_414_and_an_overlong_header_431(tmp_path):
    with running_server(tmp_path) as url:
        status, body = _raw(url, b"GET /api/v1/" + b"x" * 20_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert status == 414 and body["error"]["code"] == "uri_too_long"
        status, body = _raw(
            url, b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"y" * 20_000 + b"\r\n\r\n"
        )
        assert status == 431 and body["error"]["code"] == "headers_too_large"

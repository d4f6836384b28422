"""One web process: daphne serving assistant.asgi:application, with HTTP limits that answer.

    python -m assistant.server [daphne's arguments]      e.g. --fd 3, or -b 127.0.0.1 -p 8000

`manage.py serve` starts WEB_CONCURRENCY of these on one shared listening socket. The only
difference from plain `daphne`: twisted drops the connection of a request whose request line
or one header line is longer than 16 KB, so the client sees a reset instead of an answer;
here a too-long request line gets 414 URI Too Long and a too-long header 431, as HTTP says.
Daphne has no option for its protocol class, so its HTTPFactory name is swapped for a
subclass before the server starts (install_http_limits()).
"""

from __future__ import annotations

import json
import sys

from twisted.web import http


def _answer(status: bytes, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


class BoundedHTTPChannel(http.HTTPChannel):
    """twisted's HTTPChannel, answering 414/431 where it would drop the connection."""

    _lines_in_request = 0

    def lineReceived(self, line: bytes) -> None:
        self._lines_in_request += 1
        super().lineReceived(line)

    def allHeadersReceived(self) -> None:
        self._lines_in_request = 0  # the next line on this connection starts a new request
        super().allHeadersReceived()

    def lineLengthExceeded(self, line: bytes) -> None:
        if self._lines_in_request == 0:
            reply = _answer(b"414 URI Too Long", "uri_too_long", "The request line is longer than 16 KB.")
        else:
            reply = _answer(
                b"431 Request Header Fields Too Large", "headers_too_large", "A request header is longer than 16 KB."
            )
        self.transport.write(reply)
        self.loseConnection()


def install_http_limits() -> None:
    """Make daphne's server build BoundedHTTPChannel protocols."""
    from daphne import server
    from daphne.http_protocol import HTTPFactory

    class BoundedHTTPFactory(HTTPFactory):
        protocol = BoundedHTTPChannel

    server.HTTPFactory = BoundedHTTPFactory


def main(argv: list[str]) -> None:
    from daphne.cli import CommandLineInterface

    install_http_limits()
    CommandLineInterface().run([*argv, "assistant.asgi:application"])


if __name__ == "__main__":
    main(sys.argv[1:])

"""Which pages may open a chat socket: only this site's own.

Channels' AllowedHostsOriginValidator compares the Origin's host name with ALLOWED_HOSTS
and ignores the port, so a page served on any other port of an allowed host (another
program on the same machine, a dev server) could open a socket that carries the person's
session cookie. Here the Origin must name the scheme, host and port the socket itself was
opened on (its Host header, which must be one of ALLOWED_HOSTS), or be listed in
CSRF_TRUSTED_ORIGINS (a site behind a proxy on another name).
"""

from __future__ import annotations

from urllib.parse import urlparse

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

_PAGE_SCHEME = {"ws": "http", "wss": "https"}  # the page's scheme for the socket's
_DEFAULT_PORT = {"http": 80, "https": 443}


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            try:
                return value.decode("latin1")
            except UnicodeDecodeError:
                return None
    return None


def same_origin(scope: dict) -> bool:
    """Whether the socket in `scope` was opened by a page of this site."""
    origin, host = _header(scope, b"origin"), _header(scope, b"host")
    if not origin or not host:
        return False
    trusted = {o.lower().rstrip("/") for o in settings.CSRF_TRUSTED_ORIGINS}
    if origin.lower().rstrip("/") in trusted:
        return True
    try:
        page = urlparse(origin)
        page_port = page.port or _DEFAULT_PORT.get(page.scheme)
    except ValueError:  # a port that is not a number
        return False
    domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    scheme = _PAGE_SCHEME.get(scope.get("scheme", "ws"), "http")
    try:
        host_port = int(port) if port else _DEFAULT_PORT[scheme]
    except ValueError:
        return False
    return page.scheme == scheme and (page.hostname or "") == domain and page_port == host_port


class SameOriginValidator:
    """ASGI middleware: pass a socket on only if same_origin(); deny it (403 at the handshake) otherwise."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not same_origin(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)

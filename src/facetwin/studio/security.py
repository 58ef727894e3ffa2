"""Who may talk to the studio: an ASGI middleware in front of every route.

* **Host check** (always): the ``Host`` header must name the address the server was started
  on. A web page elsewhere cannot point a DNS name at 127.0.0.1 and read the studio through it
  (DNS rebinding).
* **Origin check** (always): a request that carries an ``Origin`` must come from the studio's own
  page, so another site open in the same browser cannot post uploads or start jobs (CSRF).
* **Access token** (whenever the server listens beyond the loopback interface): a random token,
  printed once at start, is required on every request - as ``?token=``, an
  ``Authorization: Bearer`` header, or the cookie the first tokened page load sets.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "facetwin_token"
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass
class Access:
    """The rules for one server: which Host headers are ours and the token, if any."""

    hosts: set[str] = field(default_factory=set)  # "host:port" and "host" forms accepted
    token: str | None = None

    @classmethod
    def for_bind(cls, host: str, port: int, token: str | None = None) -> Access:
        """Loopback: the loopback names, no token. Any other interface: any Host (the
        server's name is not known in advance), and a token - always."""
        if is_loopback(host):
            names = {host, "127.0.0.1", "localhost", "[::1]"}
            return cls({h for n in names for h in (n, f"{n}:{port}")}, token)
        return cls(set(), token or new_token())

    def host_ok(self, host: str) -> bool:
        return not self.hosts or host in self.hosts

    def token_ok(self, scope: Scope) -> bool:
        if self.token is None:
            return True
        return any(hmac.compare_digest(t, self.token) for t in _offered_tokens(scope))


def _header(scope: Scope, name: bytes) -> str:
    for k, v in scope.get("headers", []):
        if k == name:
            return str(v.decode("latin-1"))
    return ""


def _offered_tokens(scope: Scope) -> list[str]:
    """Every token the request carries: query, bearer header, cookie."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    found = list(query.get("token", []))
    auth = _header(scope, b"authorization")
    if auth.lower().startswith("bearer "):
        found.append(auth[7:].strip())
    cookie = SimpleCookie()
    try:
        cookie.load(_header(scope, b"cookie"))
    except Exception:  # a malformed cookie header is no token
        return found
    if COOKIE in cookie:
        found.append(cookie[COOKIE].value)
    return found


class AccessMiddleware:
    """Refuses requests that break the :class:`Access` rules with 403, before any route runs."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # the studio has none: refuse rather than pass on
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        reason = self.refusal(scope, host)
        if reason:
            await _plain(send, 403, reason)
            return
        if self.access.token is not None and self._query_token(scope):
            await self.app(scope, receive, _with_cookie(send, self.access.token))
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope, host: str) -> str:
        """Why the request is refused ('' when it is not)."""
        if not self.access.host_ok(host):
            return f"host {host!r} is not this studio's address"
        origin = _header(scope, b"origin")
        if origin and origin not in (f"http://{host}", f"https://{host}"):
            return "cross-origin requests are refused"
        if not self.access.token_ok(scope):
            return "access token required (printed when the studio started)"
        return ""

    @staticmethod
    def _query_token(scope: Scope) -> bool:
        return b"token=" in scope.get("query_string", b"")


def _with_cookie(send: Send, token: str) -> Send:
    """Wrap ``send`` so the response sets the token cookie (the page's later requests)."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            value = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
            message["headers"] = [*message.get("headers", []), (b"set-cookie", value.encode())]
        await send(message)

    return wrapped


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": body})

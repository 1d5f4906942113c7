"""Checks every request passes before the app sees it: the Host allow-list (against DNS rebinding), the same-origin
check for browsers' state-changing requests (against CSRF), and the security headers every response carries.

The Host check and the headers are WSGI middleware around everything, Socket.IO included; they sit inside
ProxyFix, so with `proxy_fix` set they see the host people used, not the proxy's.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from urllib.parse import urlsplit

from flask import request

from digits.config import Settings, is_loopback

SECURITY_HEADERS = [
    # No page of ours is meant to be framed (clickjacking); both spellings for old and new browsers.
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    # Job ids and paths in our URLs stay on this server.
    ("Referrer-Policy", "same-origin"),
]
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ANY_ADDRESS = {"", "0.0.0.0", "::"}


def host_name(value: str) -> str:
    """The name or address in a Host header, without the port: 'Example.com:5000' -> 'example.com'."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:  # name:port; a bare IPv6 address has more colons
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.split("%", 1)[0])  # fe80::1%eth0: the zone does not matter here
    except ValueError:
        return None


def is_loopback_name(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = _address(name)
    return bool(address and address.is_loopback)


def machine_names(listen_host: str) -> set[str]:
    """This machine's names and addresses, as people on the network may type them."""
    import psutil

    names = {socket.gethostname(), socket.getfqdn()}
    if listen_host not in _ANY_ADDRESS:
        names.add(listen_host)
    for addresses in psutil.net_if_addrs().values():
        for entry in addresses:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                names.add(entry.address)
    return {host_name(n) for n in names if n}


class HostAllowList:
    """Answers 400 to a Host the server does not go by, so a rebound DNS name cannot reach it from a browser."""

    # A server beyond loopback looks at its interfaces again, at most this often, when an unknown address
    # comes (a DHCP lease renewed with a new address should not need a restart).
    REFRESH_S = 30.0

    def __init__(self, app, settings: Settings):
        self.app = app
        self.settings = settings
        self.any = "*" in settings.allowed_hosts
        self.extra = {host_name(h) for h in settings.allowed_hosts if h != "*"}
        self.suffixes = tuple(h for h in self.extra if h.startswith("."))  # '.example.com': it and its subdomains
        self.network = not is_loopback(settings.host)
        self._learn()

    def _learn(self) -> None:
        names = self.extra | machine_names(self.settings.host) if self.network else set(self.extra)
        self.names = {n for n in names if _address(n) is None}
        self.addresses = {a for a in map(_address, names) if a is not None}
        self.learned = time.monotonic()

    def allows(self, name: str) -> bool:
        if self.any or is_loopback_name(name) or name in self.names:
            return True
        if any(name.endswith(s) or name == s[1:] for s in self.suffixes):
            return True
        address = _address(name)
        if address is None:
            return False
        if address not in self.addresses and self.network and time.monotonic() - self.learned > self.REFRESH_S:
            self._learn()
        return address in self.addresses

    def __call__(self, environ, start_response):
        header = environ.get("HTTP_HOST")
        if header is None or self.allows(host_name(header)):  # no Host: HTTP/1.0, never a browser
            return self.app(environ, start_response)
        name = host_name(header)[:100]
        body = (
            f"400 Bad Request: this DIGITS server does not answer to the host name {name!r}.\n"
            f"If people reach it by that name, start it with --allowed-host {name} (or add it to the allowed_hosts "
            "setting, DIGITS_ALLOWED_HOSTS). Behind a reverse proxy, also set proxy_fix.\n"
        ).encode()
        start_response("400 Bad Request", [("Content-Type", "text/plain; charset=utf-8"), *SECURITY_HEADERS])
        return [body]


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response that does not set them itself."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers = list(headers) + [(k, v) for k, v in SECURITY_HEADERS if k.lower() not in present]
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def protect(wsgi_app, settings: Settings):
    """The app behind the Host allow-list and the security headers."""
    return HostAllowList(SecurityHeaders(wsgi_app), settings)


# ---- the same-origin check for browsers ----------------------------------------------------------------------------
def _origin_key(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        scheme, port = parts.scheme.lower(), parts.port
    except ValueError:  # a port that is not a number
        return None
    default = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), None if port == default else port


def own_origin() -> str:
    """scheme://host[:port] as this request reached us (after ProxyFix, as people's browsers reached the proxy)."""
    return f"{request.scheme}://{request.host}"


def cross_origin_refusal() -> str | None:
    """Why a browser's state-changing request is refused as coming from another site's page; None: it may pass.

    A browser says where a request comes from (Origin; Sec-Fetch-Site where Origin is missing) and a page cannot
    forge either. Scripts (curl, requests) send neither and cannot be tricked into sending someone's cookie.
    """
    if request.method not in UNSAFE_METHODS:
        return None
    origin = request.headers.get("Origin")
    ours = own_origin()
    if origin is not None:
        theirs = _origin_key(origin)
        if theirs is not None and theirs == _origin_key(ours):
            return None
        where = f"a page at {origin[:100]}"
    else:
        site = request.headers.get("Sec-Fetch-Site")
        if site is None or site == "same-origin":
            return None
        where = f"another page (Sec-Fetch-Site: {site[:20]})"
    return (
        f"refused: this request came from {where}, not from this server's own pages ({ours}). Scripts may send "
        "'Authorization: Bearer <token>'; behind a reverse proxy, set proxy_fix so the server sees the address "
        "people use."
    )

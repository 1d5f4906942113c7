"""Fetching an image by URL for classification, safely, in the web process (http.client; gevent-cooperative).

http and https only; at most MAX_IMAGE_BYTES and FETCH_TIMEOUT_S in all; at most MAX_REDIRECTS redirects.
Unless the setting allow_private_urls is on, every host (the first and each redirect's) must resolve only to
public addresses: private, loopback, link-local, multicast, reserved and unspecified ones are refused, and the
connection goes to the address that was checked (so a second DNS answer cannot swap in another one).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from urllib.parse import urljoin, urlsplit

from digits import __version__

MAX_IMAGE_BYTES = 20 * 1024 * 1024
FETCH_TIMEOUT_S = 10.0
MAX_REDIRECTS = 5
MAX_URL_LENGTH = 2000
READ_BLOCK = 64 * 1024


class UrlRefused(ValueError):
    """A URL that is not fetched, or whose fetch failed; the message says why."""


def ip_refused(address: str) -> str | None:
    """Why an address may not be fetched from by default (None: it is public)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for name in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{name}"):
            return name.replace("_", "-")
    if not ip.is_global:
        return "not public"
    return None


def resolve(host: str, port: int, allow_private: bool) -> str:
    """An address of host that may be fetched from; UrlRefused when it has none or any address is refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise UrlRefused(f"cannot resolve {host}: {getattr(e, 'strerror', None) or e}") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise UrlRefused(f"cannot resolve {host}")
    if not allow_private:
        for address in addresses:
            reason = ip_refused(address)
            if reason:
                raise UrlRefused(
                    f"{host} resolves to a {reason} address ({address}); this server fetches only from public "
                    "addresses (setting allow_private_urls)"
                )
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = self.pinned_sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self.pinned_sock = self._context.wrap_socket(sock, server_hostname=self.host)


def check_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path and query) of an http(s) URL; UrlRefused otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c in url for c in "\x00\r\n\t "):
        raise UrlRefused("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise UrlRefused(f"not a valid URL: {e}") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("only http and https URLs can be fetched")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def fetch(
    url: str, *, allow_private: bool = False, max_bytes: int = MAX_IMAGE_BYTES, timeout_s: float = FETCH_TIMEOUT_S
) -> bytes:
    """The body of url (following redirects, each checked like the first); UrlRefused with a reason."""
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_REDIRECTS + 1):
        scheme, host, port, path = check_url(url)
        address = resolve(host, port, allow_private)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UrlRefused(f"fetching took longer than {timeout_s:g} s")
        cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
        conn = cls(host, port, address, remaining)
        try:
            conn.request("GET", path, headers={"User-Agent": f"DIGITS/{__version__}", "Accept": "image/*"})
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise UrlRefused(f"{host} answered {response.status} without a Location")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise UrlRefused(f"{host} answered {response.status} {response.reason}")
            length = response.getheader("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise UrlRefused(f"the image is larger than {max_bytes:,} bytes")
            return _read_body(response, max_bytes, deadline, timeout_s, conn)
        except (OSError, http.client.HTTPException) as e:
            if isinstance(e, TimeoutError | socket.timeout):
                raise UrlRefused(f"fetching took longer than {timeout_s:g} s") from None
            raise UrlRefused(f"cannot fetch from {host}: {e}") from None
        finally:
            conn.close()
    raise UrlRefused(f"more than {MAX_REDIRECTS} redirects")


def _read_body(response, max_bytes: int, deadline: float, timeout_s: float, conn) -> bytes:
    chunks, size = [], 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UrlRefused(f"fetching took longer than {timeout_s:g} s")
        # The socket stays the response's even after the connection object lets go of it ("close").
        sock = getattr(conn, "pinned_sock", None)
        if sock is not None:
            sock.settimeout(remaining)
        block = response.read1(READ_BLOCK) if hasattr(response, "read1") else response.read(READ_BLOCK)
        if not block:
            return b"".join(chunks)
        size += len(block)
        if size > max_bytes:
            raise UrlRefused(f"the image is larger than {max_bytes:,} bytes")
        chunks.append(block)

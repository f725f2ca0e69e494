"""Where cutouts may be fetched from, and how: the host that is checked is the host that is connected to.

A cutout URL comes from SegmentHead's answer, so it is checked before anything is sent:
- **One reading.** The URL must be plain: at most `MAX_URL_LENGTH` characters of RFC 3986's set (no space,
  control character, backslash or non-ASCII letter), well-formed percent-escapes, http(s), and an authority that
  is only `host[:port]` (no userinfo `@`, no escape, no bracket) whose host is an LDH name or a dotted quad as
  written by `inet_ntoa` (never `127.1`, `0x7f.1` or `2130706433`, which resolvers read as addresses). Such a URL
  reads the same to every parser; it is read by urllib3's `parse_url`, the parser of the client that connects,
  and `urlsplit` must agree with it. Anything else is refused whole, so a trick no list names is refused too.
- **An allowed host**: one the allowlist names (`*.suffix` patterns, or an exact `host[:port]`), never a
  metadata address (169.254.0.0/16, 100.100.100.200). A host matched only by a pattern must also not be, or
  resolve to, a loopback, private or link-local address; an exact entry may (`headseg serve`, tests).
- **One resolution.** The name is resolved once (`resolve`, injectable), every address it gives must pass, and
  the download connects to the first of them (`Target.address`), sending the name as the Host header and, for
  https, as SNI and the name the certificate must match. Nothing resolves the name again, so a DNS answer that
  changes between the check and the connection (rebinding) cannot move the download.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from headseg.function.errors import PermanentError, RetriableError

if TYPE_CHECKING:
    import urllib3

METADATA = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("100.100.100.200/32"))
MAX_URL_LENGTH = 4096  # a signed OSS URL is a few hundred characters, with an STS token under two thousand

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

_PLAIN = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")  # RFC 3986's characters, nothing else
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_URL = re.compile(r"(?P<scheme>https?)://(?P<host>[a-z0-9.-]+)(?::(?P<port>[1-9][0-9]{0,4}))?(?:[/?#].*)?", re.IGNORECASE | re.DOTALL)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeCutoutUrl(PermanentError):
    """A cutout URL outside the allowlist, pointing at an address headseg never contacts, or not plain enough
    for two URL parsers to be sure to read the same host."""

    code = "UnsafeCutoutURL"


@dataclass(frozen=True)
class Target:
    """A checked cutout URL: where to connect (`address`, `port`) and what to send (`host_header`,
    `request_uri`). `host` is the name the URL gives, lower-case, for the Host header and TLS."""

    scheme: str
    host: str
    port: int
    address: str
    request_uri: str

    @property
    def host_header(self) -> str:
        return self.host if self.port == _DEFAULT_PORTS[self.scheme] else f"{self.host}:{self.port}"


def default_cutout_hosts(region: str, imageseg_endpoint: str) -> tuple[str, ...]:
    """The service's own OSS domains in the region, and a custom SegmentHead endpoint's host (it serves both)."""
    hosts = [f"*.oss-{region}.aliyuncs.com", f"*.oss-{region}-internal.aliyuncs.com"]
    if imageseg_endpoint:
        hosts.append(urlsplit(imageseg_endpoint).netloc)
    return tuple(hosts)


def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for `host`, in its order of preference."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def check_cutout_url(url: object, allowed: Iterable[str], resolve: Resolver = system_resolve) -> Target:
    """Where `url` may be fetched from, or `UnsafeCutoutUrl` (see the module's docstring). Raises
    `RetriableError` when the host does not resolve."""
    scheme, host, port, request_uri = _read(url)
    exact = any(entry.lower() in (host, f"{host}:{port}") for entry in allowed)  # an entry without a port: any
    pattern = any(entry.startswith("*.") and host.endswith(entry[1:].lower()) for entry in allowed)
    if not (exact or pattern):
        raise UnsafeCutoutUrl(f"cutout host {host!r} is not in CUTOUT_HOSTS; refused")
    addresses = _addresses(host, port, resolve)
    for address in addresses:
        if any(address in network for network in METADATA):
            raise UnsafeCutoutUrl(f"cutout host {host!r} is a metadata address; refused")
        if not exact and _internal(address):
            raise UnsafeCutoutUrl(f"cutout host {host!r} is an internal address; refused")
    return Target(scheme, host, port, str(addresses[0]), request_uri)


def open_target(pools: urllib3.PoolManager, target: Target, timeout: urllib3.Timeout) -> urllib3.BaseHTTPResponse:
    """GET a checked cutout URL from the address its check resolved (the name only in the Host header and, for
    https, as SNI and the certificate's name): no redirect followed, no retry, the body left to stream raw."""
    tls = {"server_hostname": target.host, "assert_hostname": target.host} if target.scheme == "https" else None
    pool = pools.connection_from_host(target.address, target.port, target.scheme, pool_kwargs=tls)
    return pool.urlopen(
        "GET",
        target.request_uri,
        headers={"Host": target.host_header, "Accept-Encoding": "identity"},
        redirect=False,
        retries=False,
        preload_content=False,
        decode_content=False,
        timeout=timeout,
    )


def _read(url: object) -> tuple[str, str, int, str]:
    """(scheme, host, port, request URI) of a plain URL, as urllib3 reads it; `UnsafeCutoutUrl` otherwise."""
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    if not isinstance(url, str) or not 0 < len(url) <= MAX_URL_LENGTH:
        raise UnsafeCutoutUrl(f"SegmentHead returned a cutout URL that is not a string of 1 to {MAX_URL_LENGTH} characters")
    plain = _URL.fullmatch(url) if _PLAIN.fullmatch(url) and not _BAD_ESCAPE.search(url) else None
    if plain is None:
        raise UnsafeCutoutUrl(
            "SegmentHead returned a cutout URL that is not a plain http(s) URL (only host[:port] in its authority, "
            "RFC 3986 characters, no backslash or userinfo); refused"
        )
    scheme, host = plain["scheme"].lower(), plain["host"].lower()
    port = int(plain["port"]) if plain["port"] else _DEFAULT_PORTS[scheme]
    if not (_is_name(host) or _is_dotted_quad(host)) or port > 65535:
        raise UnsafeCutoutUrl(f"cutout host {host!r} (port {port}) is neither a DNS name nor a dotted-quad address; refused")
    try:
        parsed, split = parse_url(url), urlsplit(url)
        readings = {
            (parsed.scheme, parsed.host, parsed.port or _DEFAULT_PORTS[scheme]),
            (split.scheme.lower(), split.hostname, split.port or _DEFAULT_PORTS[scheme]),
        }
    except (LocationParseError, ValueError):
        readings = set()
    if readings != {(scheme, host, port)}:  # cannot happen for a URL of this grammar: the proof that it holds
        raise UnsafeCutoutUrl(f"cutout URL for {host!r} reads differently to two URL parsers; refused")
    return scheme, host, port, parsed.request_uri


def _is_name(host: str) -> bool:
    """An LDH DNS name whose last label is not numeric, and that no resolver reads as an IPv4 address."""
    labels = host.split(".")
    return (
        len(host) <= 253
        and all(_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
        and not _inet_aton(host)
    )


def _is_dotted_quad(host: str) -> bool:
    """Four decimal octets without leading zeros: the one spelling of an IPv4 address every parser agrees on."""
    return _inet_aton(host) and socket.inet_ntoa(socket.inet_aton(host)) == host


def _inet_aton(host: str) -> bool:
    """Whether the C library's resolver would take `host` for an IPv4 address (it accepts `127.1`, hex, octal)."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def _internal(address: Address) -> bool:
    """Loopback, private, link-local and the like. Not 100.64.0.0/10, where Alibaba Cloud's internal service
    endpoints live (the metadata server in it is refused above)."""
    return any(
        (address.is_loopback, address.is_private, address.is_link_local, address.is_unspecified, address.is_multicast)
    )


def _addresses(host: str, port: int, resolve: Resolver) -> list[Address]:
    """The host's addresses, each as the check must see it (an IPv4-mapped IPv6 address as its IPv4 one)."""
    if _is_dotted_quad(host):
        return [ipaddress.IPv4Address(host)]
    try:
        answers = [ipaddress.ip_address(answer.split("%", 1)[0]) for answer in resolve(host, port)]
    except (OSError, ValueError) as exc:
        raise RetriableError(f"cutout host {host!r} did not resolve: {type(exc).__name__}", code="ConnectionError") from None
    if not answers:
        raise RetriableError(f"cutout host {host!r} did not resolve to any address", code="ConnectionError")
    return [answer.ipv4_mapped or answer if isinstance(answer, ipaddress.IPv6Address) else answer for answer in answers]

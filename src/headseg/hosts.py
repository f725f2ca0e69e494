"""Where cutouts may be fetched from: hosts the configuration allows, never the instance's own neighbourhood.

A cutout URL comes from SegmentHead's answer, so it is checked before anything is sent: http(s) only, a host
the allowlist names (`*.suffix` patterns, or an exact `host[:port]`), and never a metadata address
(169.254.0.0/16, 100.100.100.200). A host matched only by a pattern must also not be, or resolve to, a
loopback, private or link-local address; an exact entry may (`headseg serve`, tests). The check resolves the
name once; the download resolves it again (a DNS answer that changes in between is not caught).
"""

from __future__ import annotations

import ipaddress
from typing import Iterable
from urllib.parse import urlsplit

from headseg.errors import PermanentError

METADATA = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("100.100.100.200/32"))


class UnsafeCutoutUrl(PermanentError):
    """A cutout URL outside the allowlist, or pointing at an address headseg never contacts."""

    code = "UnsafeCutoutURL"


def default_cutout_hosts(region: str, imageseg_endpoint: str) -> tuple[str, ...]:
    """The service's own OSS domains in the region, and a custom SegmentHead endpoint's host (it serves both)."""
    hosts = [f"*.oss-{region}.aliyuncs.com", f"*.oss-{region}-internal.aliyuncs.com"]
    if imageseg_endpoint:
        hosts.append(urlsplit(imageseg_endpoint).netloc)
    return tuple(hosts)


def check_cutout_url(url: str, allowed: Iterable[str]) -> None:
    """Raise `UnsafeCutoutUrl` unless `url` may be fetched (see the module's docstring)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise UnsafeCutoutUrl("SegmentHead returned a cutout URL that is not http(s)")
    netloc = f"{host}:{parts.port}" if parts.port else host
    exact = any(entry.lower() in (host, netloc) for entry in allowed)
    pattern = any(entry.startswith("*.") and host.endswith(entry[1:].lower()) for entry in allowed)
    if not (exact or pattern):
        raise UnsafeCutoutUrl(f"cutout host {host!r} is not in CUTOUT_HOSTS; refused")
    for address in _addresses(host, parts.port):
        if any(address in network for network in METADATA):
            raise UnsafeCutoutUrl(f"cutout host {host!r} is a metadata address; refused")
        if not exact and _internal(address):
            raise UnsafeCutoutUrl(f"cutout host {host!r} is an internal address; refused")


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, private, link-local and the like. Not 100.64.0.0/10, where Alibaba Cloud's internal service
    endpoints live (the metadata server in it is refused above)."""
    return any(
        (address.is_loopback, address.is_private, address.is_link_local, address.is_unspecified, address.is_multicast)
    )


def _addresses(host: str, port: int | None) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    import socket

    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        return []  # unresolvable: the download itself fails, retriably
    return [ipaddress.ip_address(info[4][0]) for info in infos]

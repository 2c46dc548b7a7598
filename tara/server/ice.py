"""Where WebRTC may go: the addresses Tara gathers ICE candidates on (they follow the bind address) and
the remote candidates it will send connectivity checks to (only those on its own networks).

aioice offers every LAN address and never loopback; a loopback server must offer 127.0.0.1 only, a
LAN server its LAN addresses only, and without STUN/TURN no check may leave the networks it serves on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence


def gather_ice_on(addresses: Sequence[str]) -> None:
    """Gather ICE host candidates on ``addresses`` only (aioice would offer every LAN address, never loopback)."""
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(addresses)


def ice_on_loopback_only() -> None:
    """Gather ICE candidates on 127.0.0.1 only, for a server or caller that talks to nothing else."""
    gather_ice_on(["127.0.0.1"])


def ice_addresses_for(host: str, lan: Sequence[str], pinned: Sequence[str] = ()) -> list[str]:
    """Where a server bound to ``host`` gathers: ``pinned`` (``server.ice_addresses``) if set; loopback
    for a loopback host; the LAN addresses for a wildcard host; else the one address it serves on."""
    if pinned:
        return list(pinned)
    if host == "localhost" or _is_loopback(host):
        return ["127.0.0.1"]
    if host in ("0.0.0.0", "::", ""):
        return list(lan)
    return [host]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def networks_of(addresses: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks ``addresses`` sit on (their interface's prefix; loopback is 127.0.0.0/8)."""
    import ifaddr

    prefixes = {
        ip.ip if isinstance(ip.ip, str) else ip.ip[0]: ip.network_prefix
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
    }
    found = []
    for address in addresses:
        prefix = 8 if _is_loopback(address) else prefixes.get(address, 32 if ":" not in address else 128)
        found.append(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
    return found


def _candidate_address(line: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The connection address of an ``a=candidate:`` line; None for a name (mDNS ``.local``) or garbage."""
    try:
        return ipaddress.ip_address(line.split()[4])
    except (IndexError, ValueError):
        return None


def candidate_lines(sdp: str) -> list[str]:
    return [line for line in sdp.splitlines() if line.startswith("a=candidate:")]


def candidate_addresses(sdp: str) -> list[str]:
    """The addresses ``sdp`` offers ICE candidates on, in order, each once."""
    found = (_candidate_address(line) for line in candidate_lines(sdp))
    return list(dict.fromkeys(str(address) for address in found if address is not None))


def keep_candidates_on(sdp: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    """The offer without the remote candidates outside ``networks``: Tara sends no connectivity checks
    there (names, e.g. mDNS ``.local`` candidates, are dropped too: they cannot be placed on a network)."""

    def inside(line: str) -> bool:
        address = _candidate_address(line)
        return address is not None and any(address in network for network in networks)

    lines = sdp.splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("a=candidate:") or inside(line))

"""IP allow lists: the networks an organization's API keys may be used from.

An organization may list CIDR ranges (IPv4 and IPv6); then every request with one of its keys,
personal access tokens and service keys alike, must come from inside one of them. A service key
may carry its own list, which narrows further: the request's address must be in both lists.
An empty list restricts nothing. The console (a signed-in session) is never restricted.

The address is the client's as TRUSTED_PROXY_COUNT defines it (throttle.client_ip, the same one
rate limits and the audit log use). Lists are read with the key in the one statement of the cold
path and parsed once into the cached principal (apikeys/authentication.py); on the warm path the
check is a few integer comparisons against the request's own address, with no I/O. A change to
either list saves its organization or key row, which moves the organization's authorization
version, so every process checks the new list from its very next request on.
"""

import ipaddress
import socket
from dataclasses import dataclass

from django.core.exceptions import ValidationError

FIELD = "ip_allow_list"
MAX_ENTRIES = 100
MAX_ENTRY_LENGTH = 64  # the longest IPv6 network written out in full is 43 characters

ORGANIZATION, SERVICE_KEY = "organization", "service_key"
_IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")


def _entries(value) -> list[str]:
    """The entries of a list, or of text with one entry per line (commas also separate)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.replace(",", "\n").splitlines()
    return [entry.strip() for entry in value if entry and entry.strip()]


def _network(entry: str):
    """The network an entry names, or ValidationError naming the entry and what is wrong."""
    if len(entry) > MAX_ENTRY_LENGTH or "%" in entry:
        raise ValidationError(f"“{entry[:MAX_ENTRY_LENGTH]}” is not an IPv4 or IPv6 network.")
    try:
        return ipaddress.ip_network(entry)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValidationError(
            f"“{entry}” is not an IPv4 or IPv6 address or network in CIDR notation "
            "(e.g. 203.0.113.0/24 or 2001:db8::/32)."
        ) from None
    # The address has bits set below the prefix: it is not clear which was meant, the range or
    # the one address, so the entry is refused rather than silently widened.
    address = entry.split("/", 1)[0].strip()
    host = ipaddress.ip_network(address)
    raise ValidationError(
        f"“{entry}” has host bits set: write {loose} for the whole range, or {host} for the "
        "one address."
    )


def clean_allow_list(value, field: str = FIELD) -> list[str]:
    """Entries (a list, or text with one per line) as normalised CIDR strings, duplicates
    dropped, in the order given; an empty list means no restriction. A bare address is a
    one-address network (/32 or /128). ValidationError({field: [...]}) names each bad entry."""
    entries = _entries(value)
    if len(entries) > MAX_ENTRIES:
        raise ValidationError({field: f"List at most {MAX_ENTRIES} networks."})
    networks, errors = [], []
    for entry in entries:
        try:
            network = _network(entry)
        except ValidationError as exc:
            errors.extend(exc.messages)
            continue
        if network.version == 6 and network.subnet_of(_IPV4_MAPPED):
            errors.append(f"“{entry}” is an IPv4-mapped IPv6 network: write it as IPv4.")
            continue
        if str(network) not in networks:
            networks.append(str(network))
    if errors:
        raise ValidationError({field: errors})
    return networks


# Checked on every request, so kept to integers: a network is (its address, its mask) as ints,
# and the client's address is read with inet_pton (a tenth of ipaddress.ip_address's cost).


@dataclass(frozen=True)
class Networks:
    """Normalised networks, parsed once: (address, mask) integers per IP version."""

    v4: tuple[tuple[int, int], ...] = ()
    v6: tuple[tuple[int, int], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.v4 or self.v6)

    def contain(self, address) -> bool:
        """Whether one of the networks holds `address`, a (version, integer) pair."""
        version, value = address
        return any(value & mask == network for network, mask in (self.v4, self.v6)[version == 6])


def _parsed(entries) -> Networks:
    v4, v6 = [], []
    for entry in entries:
        network = ipaddress.ip_network(entry)
        pair = (int(network.network_address), int(network.netmask))
        (v4 if network.version == 4 else v6).append(pair)
    return Networks(tuple(v4), tuple(v6))


_MAPPED_PREFIX = 0xFFFF  # ::ffff:a.b.c.d, the upper 96 bits


def client_address(text) -> tuple[int, int] | None:
    """The address a request came from as (IP version, integer), an IPv4-mapped IPv6 address
    as the IPv4 one it carries; None if it is no address at all."""
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text))
    except (OSError, TypeError, ValueError):
        pass
    try:
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, text))
    except (OSError, TypeError, ValueError):
        return None
    if value >> 32 == _MAPPED_PREFIX:
        return 4, value & 0xFFFFFFFF
    return 6, value


@dataclass(frozen=True)
class AllowList:
    """The parsed lists a key is held to: its organization's, and a service key's own."""

    organization: Networks = Networks()
    key: Networks = Networks()

    def refused_by(self, address_text) -> str | None:
        """Which list refuses a request from this address (ORGANIZATION or SERVICE_KEY), or
        None if both let it through. An address that cannot be read is refused by any list."""
        address = client_address(address_text)
        for name, networks in ((ORGANIZATION, self.organization), (SERVICE_KEY, self.key)):
            if networks and (address is None or not networks.contain(address)):
                return name
        return None


def allow_list_for(organization, key) -> AllowList | None:
    """What a key of `organization` is held to (parsed once, for the cached principal); None
    when neither list restricts anything."""
    own = getattr(key, FIELD, None) or ()
    if not organization.ip_allow_list and not own:
        return None
    return AllowList(_parsed(organization.ip_allow_list), _parsed(own))


def admits(networks, address_text) -> bool:
    """Whether a list of normalised networks lets a request from this address through."""
    return AllowList(_parsed(networks)).refused_by(address_text) is None


def refusal_detail(address_text, refused_by) -> str:
    whose = "the organization's" if refused_by == ORGANIZATION else "this service key's"
    return (
        f"This API key may not be used from {address_text}: it is outside {whose} IP allow "
        "list. Ask an organization admin to add it, or use the key from an allowed network."
    )


def check_keeps_caller(actor, *, organization_list, key_list=None) -> None:
    """An API caller may not set lists that would refuse its own next request: the change
    would lock it out (the console, never restricted, can still make such a change).

    `key_list`: the new list of the caller's own service key, if that is what changes; else the
    caller key's current list holds. Not an API caller (a console user, the system): nothing.
    """
    principal = getattr(actor, "principal", None)
    if principal is None:
        return
    if key_list is None:
        key_list = getattr(principal.key, FIELD, None) or ()
    address = getattr(principal, "address", None)
    refused_by = AllowList(_parsed(organization_list), _parsed(key_list)).refused_by(address)
    if refused_by is not None:
        whose = "organization's" if refused_by == ORGANIZATION else "key's"
        raise ValidationError(
            {
                FIELD: f"This change would refuse this very request: its address {address} "
                f"would be outside the {whose} IP allow list, so this key could not undo it. "
                "Include the address, or make the change in the console."
            }
        )

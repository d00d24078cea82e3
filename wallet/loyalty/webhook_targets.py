"""Where a webhook may point: public http(s) endpoints only.

A brand's webhook URL makes our workers open connections on the brand's
behalf, so it must never reach anything inside our network: no loopback,
private, link-local, shared (100.64/10), multicast, reserved or unspecified
address, however it is written. Names are checked by what they resolve to,
at creation and again before every delivery (a name may be re-pointed after
it was checked); the delivery then connects to exactly the addresses checked.

Hosts are read the way a URL parser and ``inet_aton`` read them, so the
notations that smuggle an address past a naive check are recognised:
"2130706433", "0x7f000001", "0177.0.0.1", "127.1", "::ffff:127.0.0.1",
6to4 and NAT64 forms embedding an IPv4 address, full-width digits and dots
(UTS #46 maps them to ASCII), trailing dots and ``*.localhost``. An
IPv4 address in another notation is stored in dotted-decimal, so no other
parser has to agree with ours on what it means.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from urllib.parse import quote, urlsplit, urlunsplit

import idna

from wallet.loyalty.errors import RuleViolation

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host name -> every address it resolves to; raises UnresolvableHost.
Resolver = Callable[[str], Sequence[IPAddress]]

MAX_URL = 2000
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
# Characters left as they are when a path or query is percent-encoded.
_URL_SAFE = "/%:@!$&'()*+,;=-._~?"


class AddressKind(Enum):
    """Why an address is not a public endpoint."""

    UNSPECIFIED = "unspecified"
    LOOPBACK = "loopback"
    LINK_LOCAL = "link-local"
    MULTICAST = "multicast"
    SHARED = "shared"  # 100.64/10, carrier-grade NAT
    PRIVATE = "private"
    RESERVED = "reserved"


class WebhookUrlError(RuleViolation):
    """A webhook URL that is not an http(s) URL we can use (422)."""

    default_code = "invalid_url"


class PrivateAddress(WebhookUrlError):
    """The URL names, or its host resolves to, an address inside a network."""

    default_code = "private_address"

    def __init__(self, host: str, address: IPAddress, kind: AddressKind) -> None:
        shown = host if host == str(address) else f"{host} ({address})"
        super().__init__(
            f"url points at {shown}, which is a {kind.value} address; webhooks go only to "
            "public internet addresses"
        )
        self.address = address
        self.kind = kind


class UnresolvableHost(WebhookUrlError):
    default_code = "unresolvable_host"

    def __init__(self, host: str) -> None:
        super().__init__(f"the host name {host!r} does not resolve; check its spelling and DNS, then retry")
        self.host = host


def address_kind(address: IPAddress) -> AddressKind | None:
    """What makes ``address`` unfit for a webhook, or None for a public one.
    IPv6 forms that carry an IPv4 address are judged by that address too."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and (kind := address_kind(embedded)) is not None:
            return kind
        if address.scope_id:
            return AddressKind.LINK_LOCAL
    if address.is_unspecified or (address.version == 4 and address in _THIS_NETWORK):
        return AddressKind.UNSPECIFIED
    if address.is_loopback:
        return AddressKind.LOOPBACK
    if address.is_link_local:
        return AddressKind.LINK_LOCAL
    if address.is_multicast:
        return AddressKind.MULTICAST
    if address.version == 4 and address in _SHARED:
        return AddressKind.SHARED
    if address.is_reserved:
        return AddressKind.RESERVED
    if address.is_private:
        return AddressKind.PRIVATE
    if not address.is_global:
        return AddressKind.RESERVED
    if isinstance(address, ipaddress.IPv6Address) and address in _NAT64[1]:
        return AddressKind.RESERVED  # local-use NAT64: translates into the operator's own network
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64[0] or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def system_resolver(host: str) -> list[IPAddress]:
    """Every address the operating system's resolver gives for ``host``."""
    try:
        answers = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        raise UnresolvableHost(host) from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvableHost(host)
    return addresses


@dataclass(frozen=True)
class WebhookTarget:
    """A checked webhook URL, taken apart for the connection."""

    url: str  # normalised: A-label host, no fragment, non-ASCII percent-encoded
    scheme: str
    host: str  # A-label name or the address as text (IPv6 without brackets)
    port: int
    netloc: str  # the Host header: host, and the port when not the scheme's default
    target: str  # path and query, as sent in the request line
    address: IPAddress | None  # set when the URL names an address instead of a host name


@dataclass(frozen=True)
class TargetPolicy:
    """The address rule and the resolver it checks names with.
    ``allow_private`` (WEBHOOK_ALLOW_PRIVATE) is for development and tests."""

    allow_private: bool = False
    resolve: Resolver = system_resolver

    def check_url(self, url: object) -> WebhookTarget:
        """The URL taken apart and checked, host resolved: WebhookUrlError
        (422) when it is not an http(s) URL to a public address."""
        target = parse_url(url)
        self.addresses(target)
        return target

    def addresses(self, target: WebhookTarget) -> list[IPAddress]:
        """The addresses to connect to for ``target``, each one checked."""
        if target.address is not None:
            found: list[IPAddress] = [target.address]
        elif _is_localhost(target.host):
            # RFC 6761: localhost and every name under it are this machine,
            # whatever a resolver would say.
            found = [ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1")]
        else:
            found = list(self.resolve(target.host))
            if not found:
                raise UnresolvableHost(target.host)
        if not self.allow_private:
            for address in found:
                kind = address_kind(address)
                if kind is not None:
                    raise PrivateAddress(target.host, address, kind)
        return found


def _is_localhost(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def parse_url(url: object) -> WebhookTarget:
    """An http(s) URL without credentials, its host in canonical form."""
    if not isinstance(url, str) or not url.strip() or len(url) > MAX_URL:
        raise WebhookUrlError(f"url must be an http(s) URL of at most {MAX_URL} characters")
    url = url.strip()
    if any(c.isspace() or ord(c) < 0x20 or c == "\x7f" or c == "\\" for c in url):
        raise WebhookUrlError("url must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookUrlError("url is not a valid URL (check the host and port)") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookUrlError("url must start with http:// or https://")
    if "@" in parts.netloc:
        raise WebhookUrlError("url must not carry a user name or password; authenticate deliveries "
                              "by their Wallet-Signature instead")
    if not parts.hostname:
        raise WebhookUrlError("url has no host")
    if port == 0:
        raise WebhookUrlError("url has port 0")
    host, address = _canonical_host(parts.hostname, bracketed=parts.netloc.startswith("["))
    shown = f"[{host}]" if address is not None and address.version == 6 else host
    netloc = shown if parts.port is None else f"{shown}:{port}"
    path, query = quote(parts.path, safe=_URL_SAFE) or "/", quote(parts.query, safe=_URL_SAFE)
    normalised = urlunsplit((parts.scheme, netloc, path, query, ""))
    if len(normalised) > MAX_URL:
        raise WebhookUrlError(f"url must be at most {MAX_URL} characters")
    return WebhookTarget(url=normalised, scheme=parts.scheme, host=host,
                         port=port or (443 if parts.scheme == "https" else 80), address=address,
                         netloc=netloc, target=f"{path}?{query}" if query else path)


def _canonical_host(raw: str, *, bracketed: bool) -> tuple[str, IPAddress | None]:
    if bracketed:
        if "%" in raw:
            raise WebhookUrlError("url must not name an IPv6 zone")
        try:
            address = ipaddress.IPv6Address(raw)
        except ValueError:
            raise WebhookUrlError(f"{raw!r} is not an IPv6 address") from None
        return str(address), address
    host = raw
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise WebhookUrlError(f"{raw!r} is not a valid host name") from None
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]  # the root label: "example.com." is "example.com"
    if not host or len(host) > 253:
        raise WebhookUrlError(f"{raw!r} is not a valid host name")
    labels = host.split(".")
    if _is_number(labels[-1]):
        # Stored and sent in dotted-decimal, so nothing downstream has to
        # agree with us on how "0x7f.1" reads.
        address = _parse_ipv4(labels)
        return str(address), address
    if not all(_LABEL.match(label) for label in labels):
        raise WebhookUrlError(f"{raw!r} is not a valid host name")
    return host, None


def _is_number(label: str) -> bool:
    """The WHATWG URL rule: a host whose last label is a number is an IPv4
    address (and fails if it is not a valid one), never a name."""
    if label[:2] in ("0x", "0X"):
        return all(c in "0123456789abcdefABCDEF" for c in label[2:])
    return bool(label) and all(c in "0123456789" for c in label)


def _parse_ipv4(labels: list[str]) -> ipaddress.IPv4Address:
    """inet_aton's reading: 1 to 4 parts, each decimal, 0x-hex or 0-octal,
    the last filling the bytes that are left ("127.1" is 127.0.0.1)."""
    text = ".".join(labels)
    if len(labels) > 4 or "" in labels:
        raise WebhookUrlError(f"{text!r} is not a valid IPv4 address")
    numbers: list[int] = []
    for label in labels:
        try:
            if label[:2] in ("0x", "0X"):
                numbers.append(int(label[2:] or "0", 16))
            elif len(label) > 1 and label.startswith("0"):
                numbers.append(int(label[1:], 8))
            else:
                numbers.append(int(label, 10))
        except ValueError:
            raise WebhookUrlError(f"{text!r} is not a valid IPv4 address") from None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise WebhookUrlError(f"{text!r} is not a valid IPv4 address")
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)

"""Backend URLs: which are valid (:func:`check_url`), and where a backend may
live (server-side request forgery).

The server, not the admin's browser, connects to the URL, so the URL is checked when it is set
and again at every call (DNS answers change), and the connection goes to
the very address that was checked (:func:`resolve`, then a socket to that
address; no second lookup):

* ``http`` or ``https`` only; no query, fragment, whitespace, control
  characters or backslashes. ``user:password@`` is kept for HTTP basic auth
  (the Label Studio SDK's ``BASIC_AUTH_USER``/``PASS``); it is never shown
  (:func:`redact`) and never sent anywhere but the checked host.
* Never allowed, whatever the settings: link-local addresses
  (``169.254.0.0/16``, ``fe80::/10``) and so the cloud metadata services
  (``169.254.169.254``, ``fd00:ec2::254``, ``100.100.100.200``,
  ``metadata.google.internal``), multicast, unspecified (``0.0.0.0``,
  ``::``), broadcast and reserved addresses; an IPv4 address inside an
  IPv6 one (``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``) is judged as the
  IPv4 address. A host name that resolves to any denied address is denied.
* Loopback (``127.0.0.0/8``, ``::1``) and private ranges (``10/8``,
  ``172.16/12``, ``192.168/16``, ``100.64/10``, ``fc00::/7``) are allowed
  by default: a model server on the same laptop or LAN is what most users
  connect, and the admin who sets the URL can reach those anyway on a
  single-user install. A shared server denies them with
  ``ASSAY_BACKEND_DENY=loopback,private``.
* ``ASSAY_BACKEND_DENY``: comma-separated CIDRs (``10.0.0.0/8``), addresses,
  host names (``ml.example.com``; ``.example.com`` or ``*.example.com`` for
  that name and every subdomain) or the words ``loopback``, ``private``, ``all``.
* ``ASSAY_BACKEND_ALLOW``: the same forms; when set, a backend must match
  it (its host name, or every address it resolves to). A deny entry wins
  over an allow entry; nothing allows the never-allowed addresses.
* Redirects are not followed (:mod:`assay.learn.ml_backend.client`): a
  ``3xx`` is an error (use the final URL), so neither the body nor the
  basic-auth header ever goes to a second address.
* The connection is direct: ``HTTP(S)_PROXY`` settings are not used (the
  address checked is the address connected to).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import urllib.parse
from collections.abc import Sequence
from typing import Any

from assay.errors import InvalidInput
from assay.learn.ml_backend.errors import BackendUnreachable

#: ``python:<name>``, a model registered in this process (:mod:`assay.learn.ml_backend.models`)
_PY = re.compile(r"python:([A-Za-z0-9_.\-]{1,100})")


def check_url(url: Any) -> str | None:
    """The canonical backend URL (None / empty: no backend), or InvalidInput."""
    if url is None:
        return None
    if not isinstance(url, str):
        raise InvalidInput("ml_backend_url must be a string: http(s)://host:port or python:<name>")
    url = url.strip()
    if not url:
        return None
    if url.startswith("python:"):
        if not _PY.fullmatch(url):
            raise InvalidInput(f"bad python model name in {url!r}: use python:<name> (letters, digits, _ . -)")
        return url
    if len(url) > 2000:
        raise InvalidInput("ml_backend_url is longer than 2000 characters")
    if _BAD_URL_CHARS.search(url):
        raise InvalidInput("ml_backend_url must not contain spaces, control characters or backslashes")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput(f"ml_backend_url is not a valid URL: {redact(url)[:200]!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"ml_backend_url must be http(s)://host[:port][/path] or python:<name>, got {redact(url)[:200]!r}")
    if parts.query or parts.fragment:
        raise InvalidInput("ml_backend_url must not have a query or a fragment")


    check_host(parts.hostname)
    return url.rstrip("/")


# ---------------------------------------------------------------- where a backend may live (SSRF)

ALLOW_ENV = "ASSAY_BACKEND_ALLOW"
DENY_ENV = "ASSAY_BACKEND_DENY"
_CONFIG_FIELD = {ALLOW_ENV: "backend_allow", DENY_ENV: "backend_deny"}  # assay.config
_BAD_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_Net = ipaddress.IPv4Network | ipaddress.IPv6Network
_Addr = ipaddress.IPv4Address | ipaddress.IPv6Address


def _nets(*cidrs: str) -> tuple[_Net, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


#: never allowed (link-local and so cloud metadata, multicast, unspecified, broadcast, reserved)
NEVER_NETS = _nets("0.0.0.0/8", "169.254.0.0/16", "100.100.100.200/32", "224.0.0.0/4", "240.0.0.0/4",
                   "::/128", "fe80::/10", "ff00::/8", "fd00:ec2::254/128")
NEVER_HOSTS = ("metadata.google.internal", "metadata.goog", "metadata", "instance-data",
               "instance-data.ec2.internal")
_WORDS = {
    "loopback": _nets("127.0.0.0/8", "::1/128"),
    "private": _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"),
    "all": _nets("0.0.0.0/0", "::/0"),
}
_HOST_RE = re.compile(r"(\*?\.)?[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*")


def _policy(env: str) -> tuple[tuple[_Net, ...], tuple[str, ...]] | None:
    """``(networks, host patterns)`` of an allow/deny setting; None when unset."""
    from assay.config import config

    raw = getattr(config(), _CONFIG_FIELD[env]) or ""
    if not raw:
        return None
    nets: list[_Net] = []
    hosts: list[str] = []
    for entry in (e.strip().lower() for e in raw.split(",")):
        if not entry:
            continue
        if entry in _WORDS or entry == "*":
            nets.extend(_WORDS["all" if entry == "*" else entry])
            continue
        try:
            nets.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        host = entry.rstrip(".")
        if not _HOST_RE.fullmatch(host):
            raise InvalidInput(f"{env}: {entry[:100]!r} is not a CIDR, an address, a host name or "
                               "one of loopback, private, all")
        hosts.append(host[1:] if host.startswith("*.") else host)
    return tuple(nets), tuple(hosts)


def _host_matches(host: str, patterns: Sequence[str]) -> bool:
    """``ml.example.com`` matches itself; ``.example.com`` that name and every subdomain."""
    return any(host == p or (p.startswith(".") and (host.endswith(p) or host == p[1:])) for p in patterns)


def _canonical_host(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def _plain(addr: _Addr) -> _Addr:
    """The IPv4 address inside an IPv4-mapped or NAT64 IPv6 address."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return addr.ipv4_mapped
        if addr in _NAT64:
            return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return addr


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def check_host(hostname: str) -> None:
    """The checks that need no DNS: the host name against the deny and allow
    settings, and an address literal against the address rules."""
    host = _canonical_host(hostname)
    deny = _policy(DENY_ENV)
    _policy(ALLOW_ENV)  # a malformed allow list is an error now, not at the first call
    if host in NEVER_HOSTS:
        raise InvalidInput(f"ml_backend_url points at {host!r}, a cloud metadata service, which is never allowed")
    if deny is not None and _host_matches(host, deny[1]):
        raise InvalidInput(f"ml_backend_url points at {host!r}, which {DENY_ENV} denies")
    try:
        addr: _Addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        try:  # the old IPv4 forms a resolver also takes: 2852039166, 0xa9.0xfe.0xa9.0xfe, 127.1
            addr = ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, UnicodeError, ValueError):
            return  # a host name: its addresses are checked when it is resolved, at every call
    check_addresses(host, [addr])


def check_addresses(hostname: str, addrs: Sequence[_Addr]) -> None:
    """InvalidInput unless every address ``hostname`` resolved to is allowed
    (see the module notes)."""
    host = _canonical_host(hostname)
    deny, allow = _policy(DENY_ENV), _policy(ALLOW_ENV)
    if not addrs:
        raise BackendUnreachable(f"the ML backend host {host!r} resolves to no address")
    for a in addrs:
        a = _plain(a)
        if a.is_link_local or a.is_multicast or a.is_unspecified or any(a in n for n in NEVER_NETS):
            raise InvalidInput(f"ml_backend_url host {host!r} is (or resolves to) {a}: link-local, cloud "
                               "metadata, multicast, unspecified and reserved addresses are never allowed")
        if deny is not None and any(a in n for n in deny[0]):
            raise InvalidInput(f"ml_backend_url host {host!r} is (or resolves to) {a}, which {DENY_ENV} denies")
    if allow is not None and not _host_matches(host, allow[1]):
        outside = [a for a in map(_plain, addrs) if not any(a in n for n in allow[0])]
        if outside:
            raise InvalidInput(f"ml_backend_url host {host!r} is (or resolves to) {outside[0]}, "
                               f"which is not in {ALLOW_ENV}")


def resolve(hostname: str, port: int) -> list[str]:
    """The host's addresses, each checked (:func:`check_addresses`): connect
    to one of these, never to the name again."""
    host = _canonical_host(hostname)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError) as e:
        raise BackendUnreachable(f"the ML backend host {host!r} does not resolve: {e}") from None
    seen: list[str] = []
    for *_, sockaddr in infos:
        ip = str(sockaddr[0]).split("%", 1)[0]
        if ip not in seen:
            seen.append(ip)
    check_addresses(host, [ipaddress.ip_address(ip) for ip in seen])
    return seen


def public_url(base_url: str | None = None) -> str | None:
    """Where a backend fetches item content: ``base_url`` if given, else
    ``ASSAY_PUBLIC_URL``; None when neither is set."""
    from assay.config import config

    url = base_url or config().public_url
    return url.strip().rstrip("/") if url else None


def redact(url: str) -> str:
    """The URL without a password, for messages and logs."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<bad url>"
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


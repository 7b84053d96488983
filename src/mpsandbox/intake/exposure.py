"""Who may reach the sandbox, and from which web pages: host check, origin check, CORS.

The sandbox listens on the developer's machine, where every page they visit can send it
requests, and DNS rebinding can make a page's own name resolve to 127.0.0.1. So, as careful
dev servers do (Vite's ``server.allowedHosts``, webpack-dev-server's ``allowedHosts``):

- a request whose ``Host`` is not loopback-like (``localhost``, ``*.localhost``, an IP
  literal) or a name the user allowed is refused, on every route;
- only the routes a browser page must reach (the intake, which takes events from a dev wiki
  on any origin, as EventGate does) answer any origin; elsewhere the sandbox sends the CORS
  headers of the real server it stands in for, which is none for its own API;
- a state-changing request from a foreign page (an ``Origin`` that is not the sandbox's own,
  or ``Sec-Fetch-Site: cross-site``) is refused outside the intake, whatever its content
  type, since a text/plain POST needs no preflight.

docs/security.md explains the rules to users; this module is the one place they live.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from yarl import URL

from mpsandbox.intake.protocol import CORS_HEADERS

#: Paths that take events from pages on any origin besides the configured intake paths
#: (``--intake-path``, and the legacy ``--beacon-path``s, which app.py passes in): EventGate's
#: test-event route. Such paths are answered with EventGate's CORS headers and served to any
#: origin. Compared without a trailing slash (see :func:`route_key`).
EXTRA_INTAKE_PATHS = frozenset({"/v1/_test/events"})

#: EventGate's read-only routes: EventGate answers them with its CORS headers like every
#: route of its app, so the sandbox does too (nothing on them is private).
EVENTGATE_READ_PATHS = frozenset({"/", "/_info", "/robots.txt"})
EVENTGATE_READ_PREFIXES = ("/v1/stream-configs",)

#: Test Kitchen's configuration API (its devserver config sets ``cors: "*"``).
TEST_KITCHEN_PREFIX = "/api/v1/"
TEST_KITCHEN_CORS = {"access-control-allow-origin": "*"}

#: MediaWiki's api.php answers CORS only when asked with ``origin=*`` (anonymous requests,
#: ApiMain::handleCORS); without the parameter it sends no CORS header at all.
MEDIAWIKI_API_PATH = "/w/api.php"
MEDIAWIKI_ANONYMOUS_CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-credentials": "false",
    "access-control-expose-headers": "MediaWiki-API-Error, Retry-After, X-Database-Lag, "
    "MediaWiki-Login-Suppressed",
}

#: Names by which a container reaches its host (a dev wiki in MediaWiki-Docker fetching
#: stream or Test Kitchen configs): only the container runtime's own resolver answers them,
#: so no web page's name can be rebound to them.
CONTAINER_HOST_NAMES = frozenset({"host.docker.internal", "host.containers.internal"})

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def route_key(path: str) -> str:
    """A path as routes are compared: without a trailing slash, as Express's non-strict
    routing matches ``/v1/events/`` to ``/v1/events``."""
    return path.rstrip("/") or "/"


def intake_route_keys(intake_paths: Iterable[str]) -> frozenset[str]:
    """Every path that takes events from any origin: the configured intake paths and
    :data:`EXTRA_INTAKE_PATHS`."""
    return frozenset(route_key(p) for p in (*intake_paths, *EXTRA_INTAKE_PATHS))


def split_host(value: str) -> tuple[str, int | None] | None:
    """``Host`` header -> (lower-case name or IP without brackets or trailing dot, port).

    None when it cannot be a host (a bad port, unbalanced brackets)."""
    value = value.strip().lower()
    port_text = None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                return None
            port_text = rest[1:]
    elif value.count(":") == 1:
        name, port_text = value.split(":")
    else:
        name = value  # a name, or an unbracketed IPv6 literal (lenient)
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return None
        port = int(port_text)
    if name.endswith(".") and not is_ip(name):
        name = name[:-1]
    return name, port


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


#: Host header values whose verdict is remembered: clients send the same few, and parsing
#: an IP literal costs more than the rest of the check; a flood of new ones clears it.
HOST_MEMO_SIZE = 256


@dataclass(slots=True)
class Policy:
    """The exposure rules of one running intake."""

    intake: frozenset[str]
    #: Names allowed besides loopback-like ones and IP literals; ``.example.test`` allows
    #: example.test and every name under it.
    allowed_hosts: tuple[str, ...] = ()
    _memo: dict[str, tuple[tuple[str, int | None] | None, bool]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def for_settings(
        cls, intake_paths: Iterable[str], allowed_hosts: Iterable[str], bind_host: str = ""
    ) -> Policy:
        names = []
        for entry in (*allowed_hosts, bind_host):
            entry = entry.strip().lower()
            lead = "." if entry.startswith(".") else ""
            parsed = split_host(entry.lstrip("."))
            if parsed and parsed[0]:
                names.append(lead + parsed[0])
        return cls(intake_route_keys(intake_paths), tuple(dict.fromkeys(names)))

    def is_intake(self, path: str) -> bool:
        return route_key(path) in self.intake

    def host_allowed(self, name: str) -> bool:
        if name == "localhost" or name.endswith(".localhost") or is_ip(name):
            return True
        if name in CONTAINER_HOST_NAMES:
            return True
        for allowed in self.allowed_hosts:
            if allowed.startswith("."):
                if name == allowed[1:] or name.endswith(allowed):
                    return True
            elif name == allowed:
                return True
        return False

    def refusal(
        self, method: str, path: str, scheme: str, headers: Mapping[str, str]
    ) -> str | None:
        """Why this request is refused (one line for a 403 body), or None to serve it.

        ``headers`` must look names up case-insensitively and offer ``getall``."""
        hosts = headers.getall("host", [])  # type: ignore[attr-defined]
        if len(hosts) > 1:
            return "Blocked request: more than one Host header."
        host = hosts[0] if hosts else ""
        parsed = None
        if host:
            # No Host at all (HTTP/1.0) cannot come from a browser, so it cannot be DNS
            # rebinding: such a request is served.
            parsed, allowed = self._host_verdict(host)
            if not allowed:
                return (
                    f"Blocked request: host {host!r} is not allowed. To allow it, start "
                    f"mpsandbox with --allowed-host {parsed[0] if parsed else 'NAME'} "
                    "(or MPSANDBOX_ALLOWED_HOSTS)."
                )
        if method in SAFE_METHODS or self.is_intake(path):
            return None
        origin = headers.get("origin")
        if origin is None:
            if (headers.get("sec-fetch-site") or "").strip().lower() == "cross-site":
                return (
                    f"Blocked request: a cross-site page may not {method} {path} "
                    "(only the intake takes requests from other sites)."
                )
            return None
        if parsed is None or not _same_origin(origin, scheme, parsed):
            return (
                f"Blocked request: origin {origin!r} may not {method} {path} (only the "
                "sandbox's own origin may; the intake takes events from any origin)."
            )
        return None

    def _host_verdict(self, host: str) -> tuple[tuple[str, int | None] | None, bool]:
        verdict = self._memo.get(host)
        if verdict is None:
            parsed = split_host(host)
            verdict = (parsed, parsed is not None and self.host_allowed(parsed[0]))
            if len(self._memo) >= HOST_MEMO_SIZE:
                self._memo.clear()
            self._memo[host] = verdict
        return verdict

    def cors_headers(self, path: str, query: Mapping[str, str]) -> Mapping[str, str]:
        """The CORS headers the real server behind ``path`` sends (see the module doc)."""
        if self.is_intake(path):
            return CORS_HEADERS
        key = route_key(path)
        if key in EVENTGATE_READ_PATHS or key.startswith(EVENTGATE_READ_PREFIXES):
            return CORS_HEADERS
        if path.startswith(TEST_KITCHEN_PREFIX):
            return TEST_KITCHEN_CORS
        if key == MEDIAWIKI_API_PATH and query.get("origin") == "*":
            return MEDIAWIKI_ANONYMOUS_CORS
        return {}


def _same_origin(origin: str, scheme: str, host: tuple[str, int | None]) -> bool:
    """Whether ``Origin`` names the origin the request was sent to (scheme, host, port)."""
    try:
        url = URL(origin.strip())
    except ValueError:
        return False
    if not url.scheme or url.host is None or url.path not in ("", "/"):
        return False
    own_port = host[1] if host[1] is not None else DEFAULT_PORTS.get(scheme)
    port = url.port if url.port is not None else DEFAULT_PORTS.get(url.scheme)
    return (url.scheme.lower(), url.host.lower().rstrip("."), port) == (
        scheme.lower(),
        host[0],
        own_port,
    )

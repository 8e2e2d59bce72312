"""How to reach Redis: one frozen value for standalone, Sentinel and Cluster, built from
explicit options or from a URL. No redis-py import here: this module is pure data.

URL forms (``user:password@`` and ``?option=value`` are accepted on each)::

    redis://host:port/db                    standalone over TCP
    rediss://host:port/db                   standalone over TLS
    unix:///path/to/redis.sock?db=0         standalone over a Unix socket
    redis+sentinel://h1:p1,h2:p2/mymaster   Sentinel: sentinel addresses, then the master name
    rediss+sentinel://...                   Sentinel, TLS to the data nodes
    redis+cluster://h1:p1,h2:p2             Cluster: startup nodes
    rediss+cluster://...                    Cluster over TLS

Query options: every numeric or boolean field of :class:`RedisConfig` by name
(``timeout``, ``connect_timeout``, ``max_connections``, ``retries``, ``backoff_base``,
``backoff_cap``, ``health_check_interval``, ``read_from_replicas``, ``ssl_check_hostname``),
plus ``db``, ``client_name``, ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import ConfigurationError

__all__ = ["RedisConfig", "Topology"]

Topology = Literal["standalone", "sentinel", "cluster"]
Address = tuple[str, int]

_DEFAULT_PORTS = {"standalone": 6379, "sentinel": 26379, "cluster": 6379}
_FLOATS = ("timeout", "connect_timeout", "backoff_base", "backoff_cap", "health_check_interval")
_INTS = ("max_connections", "retries", "db")
_BOOLS = ("read_from_replicas", "ssl_check_hostname", "watch_failover")
_STRS = ("client_name", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "service_name")


@dataclass(frozen=True)
class RedisConfig:
    """Where Redis is and how to talk to it. Passwords never appear in ``repr``.

    Timeouts are in seconds. ``timeout`` bounds every read and write on a socket
    (redis-py has one socket timeout for both), ``connect_timeout`` every connect. A
    failed command is retried ``retries`` times with redis-py's ``Retry`` and
    exponential backoff with jitter between ``backoff_base`` and ``backoff_cap``; so a
    call against a frozen server returns within about
    ``(retries + 1) * timeout + retries * backoff_cap``.
    """

    topology: Topology = "standalone"
    host: str = "127.0.0.1"
    port: int = 6379
    unix_socket_path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = False
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True
    # Sentinel: the sentinels' addresses and the monitored master's name.
    sentinels: tuple[Address, ...] = ()
    service_name: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    # Sentinel: follow ``+switch-master`` at once (sync tier; see FailoverWatch).
    watch_failover: bool = True
    # Sentinel and Cluster: serve reads (get, get_many, ttl, scan) from replicas.
    read_from_replicas: bool = False
    # Cluster: the nodes the client discovers the cluster from.
    startup_nodes: tuple[Address, ...] = ()
    max_connections: int = 64
    timeout: float = 0.5
    connect_timeout: float = 0.5
    retries: int = 2
    backoff_base: float = 0.008
    backoff_cap: float = 0.128
    health_check_interval: float = 0.0
    client_name: str | None = "novacache"

    def __post_init__(self) -> None:
        _check_types(self)
        if self.topology not in _DEFAULT_PORTS:
            raise ConfigurationError(f"unknown Redis topology {self.topology!r}")
        if self.topology == "sentinel" and (not self.sentinels or not self.service_name):
            raise ConfigurationError("Sentinel needs sentinel addresses and a service_name")
        if self.topology == "cluster" and not self.startup_nodes:
            raise ConfigurationError("Cluster needs at least one startup node")
        if self.topology != "standalone" and self.unix_socket_path:
            raise ConfigurationError("a Unix socket is for a standalone server only")
        if self.topology == "cluster" and self.db != 0:
            raise ConfigurationError("Redis Cluster has only database 0")
        if self.read_from_replicas and self.topology == "standalone":
            raise ConfigurationError("read_from_replicas needs Sentinel or Cluster")
        for name in ("timeout", "connect_timeout", "backoff_base", "backoff_cap"):
            value = getattr(self, name)
            if not 0 < _seconds(value) < math.inf:
                raise ConfigurationError(f"{name} must be a finite number of seconds > 0")
        if self.retries < 0 or self.max_connections < 1:
            raise ConfigurationError("retries must be >= 0 and max_connections >= 1")
        if not 0 <= _seconds(self.health_check_interval) < math.inf:
            raise ConfigurationError("health_check_interval must be finite and >= 0")
        if self.db < 0:
            raise ConfigurationError("db must be >= 0")
        for _host, port in ((self.host, self.port), *self.sentinels, *self.startup_nodes):
            if not 0 < port < 65536:
                raise ConfigurationError("a port must be within 1..65535")

    def replace(self, **changes: Any) -> RedisConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisConfig:
        """Parse one of the URL forms in the module docstring; ``options`` override it.

        Raises :class:`~novacache.errors.ConfigurationError` for an unknown scheme, a
        malformed address or an unknown query option. The message never repeats the URL
        (it may hold a password).
        """
        if not isinstance(url, str):
            raise TypeError(f"a Redis URL must be str, not {type(url).__name__}")
        try:
            parts = urlsplit(url)
            query = parse_qsl(parts.query, keep_blank_values=True)
        except ValueError:  # e.g. an unclosed "[": the message would repeat the URL
            raise ConfigurationError("malformed Redis URL") from None
        scheme = parts.scheme.lower()
        kw: dict[str, Any] = {}
        base, _, variant = scheme.partition("+")
        if base not in ("redis", "rediss", "unix"):
            raise ConfigurationError(f"unsupported Redis URL scheme {scheme!r}")
        if base == "rediss":
            kw["ssl"] = True
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, netloc = netloc.rpartition("@")
            user, has_pw, password = userinfo.partition(":")
            if user:
                kw["username"] = unquote(user)
            if has_pw:
                kw["password"] = unquote(password)
        path = parts.path
        if base == "unix":
            if variant:
                raise ConfigurationError("unix:// URLs are for a standalone server only")
            kw["unix_socket_path"] = unquote(path)
        elif variant == "sentinel":
            kw["topology"] = "sentinel"
            kw["sentinels"] = _addresses(netloc, _DEFAULT_PORTS["sentinel"])
            segments = [s for s in path.split("/") if s]
            if segments:
                kw["service_name"] = unquote(segments[0])
            if len(segments) > 1:
                kw["db"] = _number(int, "db", segments[1])
        elif variant == "cluster":
            kw["topology"] = "cluster"
            kw["startup_nodes"] = _addresses(netloc, _DEFAULT_PORTS["cluster"])
            if path.strip("/"):
                kw["db"] = _number(int, "db", path.strip("/"))
        elif variant:
            raise ConfigurationError(f"unsupported Redis URL scheme {scheme!r}")
        else:
            ((kw["host"], kw["port"]),) = _addresses(netloc or "127.0.0.1", 6379)[:1]
            if path.strip("/"):
                kw["db"] = _number(int, "db", path.strip("/"))
        for name, value in query:
            if name in _FLOATS:
                kw[name] = _number(float, name, value)
            elif name in _INTS:
                kw[name] = _number(int, name, value)
            elif name in _BOOLS:
                kw[name] = value.lower() in ("1", "true", "yes", "on")
            elif name in _STRS:
                kw[name] = value
            else:
                raise ConfigurationError(f"unknown Redis URL option {name!r}")
        kw.update(options)
        return cls(**kw)


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(_FLOATS, (int, float)),
    **dict.fromkeys(("max_connections", "retries", "db", "port"), (int,)),
    **dict.fromkeys((*_BOOLS, "ssl"), (bool,)),
    **dict.fromkeys(("topology", "host"), (str,)),
}
_OPTIONAL_STRS = (*_STRS, "unix_socket_path", "username", "password", "sentinel_username",
                  "sentinel_password")  # fmt: skip


def _seconds(value: float) -> float:
    """``value`` as a float; an int beyond the floats is infinite."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _check_types(config: RedisConfig) -> None:
    """``TypeError`` naming the field for a value of the wrong type (checked before any
    value, so a comparison never fails with a bare ``TypeError`` of its own)."""
    for name, kinds in _FIELD_TYPES.items():
        value = getattr(config, name)
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            raise TypeError(f"RedisConfig.{name} must be {kinds[-1].__name__}, not {value!r}")
    for name in _OPTIONAL_STRS:
        value = getattr(config, name)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"RedisConfig.{name} must be str or None, not {type(value).__name__}")
    for name in ("sentinels", "startup_nodes"):
        value = getattr(config, name)
        if not isinstance(value, (tuple, list)) or not all(
            isinstance(a, (tuple, list))
            and len(a) == 2
            and isinstance(a[0], str)
            and type(a[1]) is int
            for a in value
        ):
            raise TypeError(f"RedisConfig.{name} must be a sequence of (host, port) pairs")
        # Note that the dataclass is frozen: a list given by the caller becomes a tuple.
        object.__setattr__(config, name, tuple((host, port) for host, port in value))


def _number(kind: type[int] | type[float], name: str, text: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise ConfigurationError(f"Redis URL option {name!r} is not a number") from None


def _addresses(netloc: str, default_port: int) -> tuple[Address, ...]:
    out: list[Address] = []
    for item in netloc.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):  # [ipv6]:port
            host, closed, rest = item[1:].partition("]")
            if not closed or (rest and not rest.startswith(":")):
                raise ConfigurationError("malformed address in Redis URL")
            port_text = rest[1:]
        else:
            host, _, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        port = _number(int, "port", port_text) if port_text else default_port
        if not host or not 0 < port < 65536:
            raise ConfigurationError("malformed address in Redis URL")
        out.append((host, port))
    if not out:
        raise ConfigurationError("no address in Redis URL")
    return tuple(out)

"""``novacache.toml``: one file for the tiers, the codec's keys, the HTTP API's limits and
its token, read by ``novacache serve``, ``novacache demo`` and the CLI.

Secrets are never written in the file: the codec's keys, the pickle key and the API
token are *named* there, by an environment variable (``keys_env = "NAME"``) or a file
(``keys_file = "path"``, relative to the configuration file), and read when the file is
loaded. A Redis URL or a PostgreSQL DSN with a password may be named the same way
(``url_env`` / ``url_file``, ``dsn_env`` / ``dsn_file``).

Every problem is a :class:`~novacache.errors.ConfigurationError` whose message names the
file, the key (``tiers.redis.url``) and what is wrong; an unknown key is one too (a typo
never silently falls back to a default). The reference is ``docs/http.md``.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

__all__ = [
    "DEFAULT_PORT",
    "CodecConfig",
    "Config",
    "HTTPConfig",
    "RedisSection",
    "load",
    "parse",
]

DEFAULT_PORT = 8750
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class RedisSection:
    """``[tiers.redis]``: L2 (``url``: ``redis://``, ``redis+sentinel://``,
    ``redis+cluster://``, see :mod:`novacache.tiers.redis_config`), its key ``prefix``,
    and ``bus``: the cross-process L1 invalidation bus over the same server."""

    url: str = field(repr=False)
    prefix: str = ""
    bus: bool = True


@dataclass(frozen=True)
class CodecConfig:
    """``[codec]``: the codec's AES-256-GCM keys (``{key id: 32 bytes}``, none: frames
    are not encrypted), the active key id, the pickle key, compression and serializer."""

    keys: Mapping[int, bytes] = field(default_factory=dict, repr=False)
    active_key: int | None = None
    pickle_key: bytes | None = field(default=None, repr=False)
    compression: str | None = "lz4"
    serializer: str = "msgpack"

    def build(self) -> Any:
        """The :class:`~novacache.Codec` this section describes; it round-trips the
        NovaCron models too (:mod:`novacache.novacron.models`), so the domain caches (the
        warmers of ``novacache serve``) can run on the configured manager."""
        from .codec import Codec, KeyRing
        from .novacron.models import MODELS

        ring = None
        if self.keys:
            active = self.active_key if self.active_key is not None else max(self.keys)
            ring = KeyRing(dict(self.keys), active=active)
        return Codec(
            serializer=self.serializer,
            compression=self.compression,
            keyring=ring,
            pickle_key=self.pickle_key,
            dataclasses=MODELS,
        )


@dataclass(frozen=True)
class HTTPConfig:
    """``[http]``: where ``novacache serve`` listens, its bearer token (``None``: the
    server refuses to start unless ``insecure = true``), whether reads need the token
    too, the request limits, and ``warmers``: ``"module:factory"``, a function given the
    manager that returns ``{type: domain cache}`` for the warmup endpoint."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = field(default=None, repr=False)
    insecure: bool = False
    protect_reads: bool = False
    max_body_bytes: int = 1 << 20
    max_keys: int = 10_000
    max_warmup_jobs: int = 2
    url: str | None = None
    warmers: str | None = None

    @property
    def base_url(self) -> str:
        """The URL the CLI talks to: ``url``, else ``http://host:port``."""
        if self.url:
            return self.url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class Config:
    """A loaded ``novacache.toml`` (or the defaults: an embedded SQLite store)."""

    path: Path | None = None
    ttl: float | None = None
    l1_maxsize: int | None = 10_000
    l1_maxbytes: int | None = None
    redis: RedisSection | None = None
    sqlite_path: Path | None = None
    sqlite_maxbytes: int | None = None
    postgres_dsn: str | None = field(default=None, repr=False)
    postgres_table: str = "novacache"
    postgres_maxbytes: int | None = None
    codec: CodecConfig = field(default_factory=CodecConfig)
    http: HTTPConfig = field(default_factory=HTTPConfig)

    @property
    def tiers(self) -> tuple[str, ...]:
        """The tier slots configured below L1 (``"remote"``, ``"store"``)."""
        out = []
        if self.redis is not None:
            out.append("remote")
        if self.sqlite_path is not None or self.postgres_dsn is not None:
            out.append("store")
        return tuple(out)

    def _local(self) -> Any:
        from ._local import LocalCache

        return LocalCache(self.l1_maxsize, maxbytes=self.l1_maxbytes)

    def _bus(self) -> Any:
        if self.redis is None or not self.redis.bus:
            return None
        from .coherence import InvalidationBus
        from .tiers.redis import RedisTier

        return InvalidationBus(RedisTier(self.redis.url, prefix=self.redis.prefix, name="bus"))

    def open_manager(self) -> Any:
        """A :class:`~novacache.manager.CacheManager` on the configured tiers (the caller
        closes it)."""
        from .manager import CacheManager

        remote: Any = None
        store: Any = None
        if self.redis is not None:
            from .tiers.redis import RedisTier

            remote = RedisTier(self.redis.url, prefix=self.redis.prefix)
        if self.sqlite_path is not None:
            from .tiers.sqlite import SQLiteTier

            store = SQLiteTier(self.sqlite_path, maxbytes=self.sqlite_maxbytes)
        elif self.postgres_dsn is not None:
            from .tiers.postgres import PostgresTier

            store = PostgresTier(
                self.postgres_dsn, table=self.postgres_table, maxbytes=self.postgres_maxbytes
            )
        return CacheManager(
            local=self._local(),
            remote=remote,
            store=store,
            codec=self.codec.build(),
            ttl=self.ttl,
            bus=self._bus(),
        )

    async def open_async_manager(self) -> Any:
        """An :class:`~novacache.manager.AsyncCacheManager` on the configured tiers (the
        caller closes it); what ``novacache serve`` serves."""
        from .manager import AsyncCacheManager

        remote: Any = None
        store: Any = None
        if self.redis is not None:
            from .tiers.redis import AsyncRedisTier

            remote = AsyncRedisTier(self.redis.url, prefix=self.redis.prefix)
        if self.sqlite_path is not None:
            from .tiers.sqlite import AsyncSQLiteTier

            store = await AsyncSQLiteTier.open(self.sqlite_path, maxbytes=self.sqlite_maxbytes)
        elif self.postgres_dsn is not None:
            from .tiers.postgres import AsyncPostgresTier

            store = AsyncPostgresTier(
                self.postgres_dsn, table=self.postgres_table, maxbytes=self.postgres_maxbytes
            )
        return AsyncCacheManager(
            local=self._local(),
            remote=remote,
            store=store,
            codec=self.codec.build(),
            ttl=self.ttl,
            bus=self._bus(),
        )


# -- reading the file -----------------------------------------------------------------


class _Reader:
    """Reads one table of the file, naming ``file: key`` in every error."""

    def __init__(self, file: str, base: Path, table: Mapping[str, Any], prefix: str) -> None:
        self.file = file
        self.base = base
        self.table = dict(table)
        self.prefix = prefix
        self.used: set[str] = set()

    def name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def fail(self, key: str, problem: str) -> ConfigurationError:
        return ConfigurationError(f"{self.file}: {self.name(key)}: {problem}")

    def get(self, key: str) -> Any:
        self.used.add(key)
        return self.table.get(key)

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, not {_kind(value)}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {_kind(value)}")
        return value

    def integer(self, key: str, default: int | None, *, low: int = 1, high: int = 2**63 - 1) -> Any:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, not {_kind(value)}")
        if not low <= value <= high:
            raise self.fail(key, f"must be between {low} and {high}, not {value}")
        return value

    def seconds(self, key: str) -> float | None:
        value = self.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"must be a number of seconds, not {_kind(value)}")
        if not value > 0 or math.isnan(value):
            raise self.fail(key, f"must be > 0 seconds, not {value}")
        return float(value)

    def table_of(self, key: str) -> _Reader | None:
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table ([{self.name(key)}]), not {_kind(value)}")
        return _Reader(self.file, self.base, value, f"{self.name(key)}.")

    def path(self, key: str) -> Path | None:
        text = self.text(key)
        if text is None:
            return None
        if not text or "\x00" in text:
            raise self.fail(key, "must be a non-empty path")
        path = Path(os.path.expanduser(text))
        return path if path.is_absolute() else self.base / path

    def secret(self, key: str, *, literal: bool) -> str | None:
        """The value of ``key`` (when ``literal``), ``key_env`` (an environment variable
        named) or ``key_file`` (a file named; surrounding whitespace stripped): at most
        one of them."""
        given = [k for k in (key, f"{key}_env", f"{key}_file") if self.table.get(k) is not None]
        self.used.update((key, f"{key}_env", f"{key}_file"))
        if not literal and self.table.get(key) is not None:
            raise self.fail(
                key,
                f"a secret is never written in the file: name it with {key}_env "
                f"(an environment variable) or {key}_file (a file)",
            )
        if len(given) > 1:
            raise self.fail(given[1], f"give one of {', '.join(given)}")
        if not given:
            return None
        which = given[0]
        value = self.text(which)
        assert value is not None
        if which == key:
            return value
        if which.endswith("_env"):
            if not value:
                raise self.fail(which, "must name an environment variable")
            found = os.environ.get(value)
            if found is None or not found.strip():
                raise self.fail(which, f"the environment variable {value} is not set or empty")
            return found.strip()
        path = self.path(which)
        assert path is not None
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise self.fail(which, f"cannot read {path}: {type(exc).__name__}") from None
        if not text.strip():
            raise self.fail(which, f"{path} is empty")
        return text.strip()

    def done(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.fail(unknown[0], "unknown key (a typo?)")


def _kind(value: object) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    return names.get(type(value), f"a {type(value).__name__}")


def _keys(reader: _Reader, text: str) -> dict[int, bytes]:
    """``"1:<base64>,2:<base64>"`` (commas or new lines between entries)."""
    which = "keys_env" if reader.table.get("keys_env") is not None else "keys_file"
    keys: dict[int, bytes] = {}
    for n, item in enumerate(text.replace("\n", ",").split(","), 1):
        item = item.strip()
        if not item:
            continue
        ident, sep, encoded = item.partition(":")
        if not sep or not ident.strip().isdigit() or not 1 <= int(ident) <= 255:
            raise reader.fail(which, f"entry {n} is not <key id 1..255>:<base64 key>")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise reader.fail(which, f"entry {n}: the key is not base64") from None
        if len(key) != 32:
            raise reader.fail(which, f"entry {n}: a key is 32 bytes, not {len(key)}")
        if int(ident) in keys:
            raise reader.fail(which, f"entry {n}: key id {int(ident)} given twice")
        keys[int(ident)] = key
    if not keys:
        raise reader.fail(which, "holds no key")
    return keys


def parse(
    data: Mapping[str, Any], *, file: str = "novacache.toml", base: Path | None = None
) -> Config:
    """The :class:`Config` of the already parsed TOML ``data`` (``file`` names it in
    errors; relative paths are resolved from ``base``, default the current directory)."""
    base = base if base is not None else Path.cwd()
    root = _Reader(file, base, data, "")
    cache = root.table_of("cache") or _Reader(file, base, {}, "cache.")
    ttl = cache.seconds("ttl")
    l1_maxsize = cache.integer("l1_maxsize", 10_000)
    l1_maxbytes = cache.integer("l1_maxbytes", None)
    cache.done()

    redis = sqlite_path = postgres_dsn = None
    sqlite_maxbytes = postgres_maxbytes = None
    postgres_table = "novacache"
    tiers = root.table_of("tiers")
    if tiers is not None:
        section = tiers.table_of("redis")
        if section is not None:
            url = section.secret("url", literal=True)
            if url is None:
                raise section.fail("url", "missing: give url, url_env or url_file")
            if not url.startswith(("redis://", "rediss://", "unix://", "redis+", "rediss+")):
                raise section.fail("url", "must be a redis://, rediss://, unix://, "
                                   "redis+sentinel:// or redis+cluster:// URL")  # fmt: skip
            try:
                from .tiers.redis_config import RedisConfig

                RedisConfig.from_url(url)
            except ConfigurationError as exc:
                raise section.fail("url", str(exc)) from None
            redis = RedisSection(
                url=url, prefix=section.text("prefix", "") or "", bus=section.flag("bus", True)
            )
            section.done()
        sqlite = tiers.table_of("sqlite")
        postgres = tiers.table_of("postgres")
        if sqlite is not None and postgres is not None:
            raise tiers.fail("postgres", "one store: give [tiers.sqlite] or [tiers.postgres]")
        if sqlite is not None:
            sqlite_path = sqlite.path("path")
            if sqlite_path is None:
                raise sqlite.fail("path", "missing: the SQLite file")
            sqlite_maxbytes = sqlite.integer("maxbytes", None)
            sqlite.done()
        if postgres is not None:
            postgres_dsn = postgres.secret("dsn", literal=True)
            if postgres_dsn is None:
                raise postgres.fail("dsn", "missing: give dsn, dsn_env or dsn_file")
            postgres_table = postgres.text("table", "novacache") or "novacache"
            postgres_maxbytes = postgres.integer("maxbytes", None)
            postgres.done()
        tiers.done()

    codec = CodecConfig()
    section = root.table_of("codec")
    if section is not None:
        text = section.secret("keys", literal=False)
        keys: dict[int, bytes] = _keys(section, text) if text is not None else {}
        active = section.integer("active_key", None, high=255)
        if active is not None and active not in keys:
            raise section.fail("active_key", f"key id {active} is not among the keys")
        pickle_text = section.secret("pickle_key", literal=False)
        pickle_key = pickle_text.encode() if pickle_text is not None else None
        compression = section.text("compression", "lz4")
        if compression not in ("lz4", "none"):
            raise section.fail("compression", f'must be "lz4" or "none", not {compression!r}')
        serializer = section.text("serializer", "msgpack") or "msgpack"
        if serializer not in ("msgpack", "json", "pickle"):
            raise section.fail("serializer", f"must be msgpack, json or pickle, not {serializer!r}")
        if serializer == "pickle" and pickle_key is None:
            raise section.fail("serializer", "pickle needs pickle_key_env or pickle_key_file")
        section.done()
        codec = CodecConfig(
            keys=keys,
            active_key=active,
            pickle_key=pickle_key,
            compression=None if compression == "none" else compression,
            serializer=serializer,
        )

    http = HTTPConfig()
    section = root.table_of("http")
    if section is not None:
        token = section.secret("token", literal=False)
        if token is not None and not (
            len(token) >= 16 and token.isascii() and token.isprintable() and " " not in token
        ):
            raise section.fail(
                "token", "a token is at least 16 printable ASCII characters, no spaces"
            )
        http = HTTPConfig(
            host=section.text("host", "127.0.0.1") or "127.0.0.1",
            port=section.integer("port", DEFAULT_PORT, low=0, high=65535),
            token=token,
            insecure=section.flag("insecure", False),
            protect_reads=section.flag("protect_reads", False),
            max_body_bytes=section.integer("max_body_bytes", 1 << 20, low=64),
            max_keys=section.integer("max_keys", 10_000),
            max_warmup_jobs=section.integer("max_warmup_jobs", 2, high=64),
            url=section.text("url"),
            warmers=section.text("warmers"),
        )
        if http.warmers is not None and not _IMPORT_PATH.match(http.warmers):
            raise section.fail("warmers", 'must be "package.module:factory"')
        section.done()
    root.done()
    return Config(
        path=None,
        ttl=ttl,
        l1_maxsize=l1_maxsize,
        l1_maxbytes=l1_maxbytes,
        redis=redis,
        sqlite_path=sqlite_path,
        sqlite_maxbytes=sqlite_maxbytes,
        postgres_dsn=postgres_dsn,
        postgres_table=postgres_table,
        postgres_maxbytes=postgres_maxbytes,
        codec=codec,
        http=http,
    )


def load(path: str | os.PathLike[str]) -> Config:
    """Read and check the configuration file ``path``; relative paths in it are relative
    to its directory. Raises :class:`~novacache.errors.ConfigurationError` naming the
    file (and the key) for a missing or unreadable file, bad TOML or a bad value."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"{file}: cannot read: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigurationError(f"{file}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{file}: not valid TOML: {exc}") from None
    config = parse(data, file=str(file), base=file.resolve().parent)
    return _with_path(config, file)


def _with_path(config: Config, file: Path) -> Config:
    from dataclasses import replace

    return replace(config, path=file)

"""novacache.toml: what a good file gives, and that every bad one is refused with an error
naming the file, the key and what is wrong (secrets never written in the file)."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import pytest

from novacache import config
from novacache.codec import Codec
from novacache.errors import ConfigurationError, DecryptionFailed
from tiers.redis_servers import Standalone

KEY1 = base64.b64encode(b"\x01" * 32).decode()
KEY2 = base64.b64encode(b"\x02" * 32).decode()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "novacache.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_full_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NC_TEST_KEYS", f"1:{KEY1}, 2:{KEY2}")
    (tmp_path / "token").write_text("a-token-of-20-chars!\n", encoding="utf-8")
    path = _write(
        tmp_path,
        """
[cache]
ttl = 300
l1_maxsize = 5000

[tiers.redis]
url = "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster"
prefix = "nc:"

[tiers.sqlite]
path = "data/cache.db"
maxbytes = 1048576

[codec]
keys_env = "NC_TEST_KEYS"
active_key = 1

[http]
host = "0.0.0.0"
port = 9000
token_file = "token"
protect_reads = true
max_body_bytes = 4096
max_keys = 100
""",
    )
    cfg = config.load(path)
    assert cfg.path == path
    assert cfg.ttl == 300.0
    assert cfg.l1_maxsize == 5000
    assert cfg.redis is not None
    assert cfg.redis.prefix == "nc:"
    assert cfg.redis.bus is True
    assert cfg.sqlite_path == tmp_path / "data" / "cache.db"  # relative to the file
    assert cfg.tiers == ("remote", "store")
    assert dict(cfg.codec.keys) == {1: b"\x01" * 32, 2: b"\x02" * 32}
    assert cfg.codec.active_key == 1
    assert cfg.http.token == "a-token-of-20-chars!"
    assert (cfg.http.port, cfg.http.protect_reads, cfg.http.max_keys) == (9000, True, 100)
    assert cfg.http.base_url == "http://127.0.0.1:9000"
    shown = repr(cfg)
    assert "a-token" not in shown
    assert KEY1 not in shown
    assert "\\x01" not in shown


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[cache]\nttl = -1", "cache.ttl: must be > 0 seconds, not -1"),
        ("[cache]\nttl = 'long'", "cache.ttl: must be a number of seconds, not a string"),
        ("[cache]\nl1_size = 10", "cache.l1_size: unknown key (a typo?)"),
        ("[cahce]\nttl = 1", "cahce: unknown key (a typo?)"),
        ("cache = 3", "cache: must be a table ([cache]), not an integer"),
        ("[tiers.redis]\nprefix = 'x'", "tiers.redis.url: missing: give url, url_env or url_file"),
        ("[tiers.redis]\nurl = 'http://x'", "tiers.redis.url: must be a redis://"),
        ("[tiers.redis]\nurl = 'redis://h:notaport'", "tiers.redis.url: "),
        ("[tiers.redis]\nurl = 'redis://h'\nbus = 'yes'", "tiers.redis.bus: must be true or false"),
        ("[tiers.sqlite]\nmaxbytes = 10", "tiers.sqlite.path: missing"),
        (
            "[tiers.sqlite]\npath = 'a.db'\n[tiers.postgres]\ndsn = 'x'",
            "tiers.postgres: one store",
        ),
        ("[tiers.postgres]\ntable = 't'", "tiers.postgres.dsn: missing"),
        ("[codec]\nkeys = 'abc'", "codec.keys: a secret is never written in the file"),
        (
            "[codec]\nkeys_env = 'NC_TEST_UNSET_VAR'",
            "codec.keys_env: the environment variable NC_TEST_UNSET_VAR is not set or empty",
        ),
        ("[codec]\nkeys_file = 'nope.txt'", "codec.keys_file: cannot read"),
        ("[codec]\nkeys_env = 'NC_BAD_KEYS'", "codec.keys_env: entry 1: a key is 32 bytes, not 3"),
        ("[codec]\nkeys_env = 'NC_TEST_KEYS'\nactive_key = 9", "codec.active_key: key id 9"),
        ("[codec]\ncompression = 'gzip'", 'codec.compression: must be "lz4" or "none"'),
        ("[codec]\nserializer = 'pickle'", "codec.serializer: pickle needs pickle_key_env"),
        ("[http]\ntoken = 'secret-secret-secret'", "http.token: a secret is never written"),
        (
            "[http]\ntoken_env = 'NC_SHORT_TOKEN'",
            "http.token: a token is at least 16 printable ASCII",
        ),
        ("[http]\nport = 70000", "http.port: must be between 0 and 65535, not 70000"),
        ("[http]\nmax_keys = 0", "http.max_keys: must be between 1 and"),
        ("[http]\nwarmers = 'no colon'", 'http.warmers: must be "package.module:factory"'),
        ("[http]\nmax_keys = true", "http.max_keys: must be an integer, not a boolean"),
        (
            "[http]\ntoken_env = 'NC_TEST_KEYS'\ntoken_file = 'x'",
            "http.token_file: give one of token_env, token_file",
        ),
    ],
)
def test_errors_name_the_file_the_key_and_the_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    monkeypatch.setenv("NC_TEST_KEYS", f"1:{KEY1}")
    monkeypatch.setenv("NC_BAD_KEYS", "1:" + base64.b64encode(b"abc").decode())
    monkeypatch.setenv("NC_SHORT_TOKEN", "short")
    monkeypatch.delenv("NC_TEST_UNSET_VAR", raising=False)
    path = _write(tmp_path, text)
    with pytest.raises(ConfigurationError) as info:
        config.load(path)
    text_of = str(info.value)
    assert text_of.startswith(f"{path}: "), text_of
    assert message in text_of
    for secret in ("secret-secret-secret", KEY1, "YWJj"):
        assert secret not in text_of


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"missing\.toml: cannot read"):
        config.load(tmp_path / "missing.toml")
    path = _write(tmp_path, "[cache\nttl = 1")
    with pytest.raises(ConfigurationError, match=r"novacache\.toml: not valid TOML"):
        config.load(path)
    path.write_bytes(b"[cache]\nttl = 1 # \xff\n")
    with pytest.raises(ConfigurationError, match=r"novacache\.toml: not UTF-8"):
        config.load(path)


def test_the_configured_manager_encrypts_with_the_named_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_standalone: Standalone
) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"1:{KEY1}\n2:{KEY2}\n", encoding="utf-8")
    os.chmod(keys_file, 0o600)
    prefix = f"cfg-{secrets.token_hex(4)}:"
    path = _write(
        tmp_path,
        f"""
[cache]
ttl = 60
[tiers.redis]
url = "{redis_standalone.url}"
prefix = "{prefix}"
bus = false
[tiers.sqlite]
path = "store.db"
[codec]
keys_file = "keys"
""",
    )
    cfg = config.load(path)
    manager = cfg.open_manager()
    try:
        manager.set("vm:1", {"cpu": 4})
        frame = manager.remote.get("vm:1")
        assert frame is not None
        with pytest.raises(DecryptionFailed):
            Codec().decode("vm:1", frame)  # no key ring: refused
        manager.local.clear()
        assert manager.get("vm:1") == {"cpu": 4}  # read back through the key ring
        assert 0 < manager.remote.ttl("vm:1") <= 61
        assert (tmp_path / "store.db").exists()
    finally:
        manager.close()

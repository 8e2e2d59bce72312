"""Real Redis servers for the tests: standalone, master + replica + 3 sentinels, a 6-node
Cluster. Each process runs from its own temp dir on a free loopback port in 15000-22000
(never 6379/26379), with the settings ``/work/shared/notes/redis-testing.md`` measured
(no diskless-sync delay, short node/down timeouts, 127.0.0.1 everywhere).

Every wait is a bounded loop; every process is stopped when the session ends, also when
a test fails (session fixtures, an ``atexit`` hook, and ``PR_SET_PDEATHSIG`` so a killed
pytest does not leave servers behind). When ``redis-server`` is missing the tests skip
locally and fail when ``CI`` is set.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PORT_RANGE = (15000, 22000)
SERVICE = "novamaster"
_STARTED: list[RedisProcess] = []
_TAKEN: set[int] = set()


def require_redis(*programs: str) -> dict[str, str]:
    """Paths of the Redis programs; skip locally, fail in CI, when one is missing."""
    found: dict[str, str] = {}
    for program in programs or ("redis-server",):
        path = shutil.which(program)
        if path is None:
            message = f"{program} is not installed (scripts/system-deps installs it)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        found[program] = path
    return found


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(cluster: bool = False) -> int:
    """A loopback port in 15000-22000 that binds now (and its bus port, +10000, too)."""
    for _ in range(500):
        port = random.randint(*PORT_RANGE)
        if port in _TAKEN or port in (6379, 26379):
            continue
        if _port_free(port) and (not cluster or _port_free(port + 10000)):
            _TAKEN.add(port)
            return port
    raise RuntimeError("no free loopback port in 15000-22000")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> None:
    """Poll ``check`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:
            last = exc
        time.sleep(step)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last error: {last!r})")


class RedisProcess:
    """One redis-server (or sentinel) process with its config file and log."""

    def __init__(
        self,
        workdir: Path,
        port: int,
        conf: dict[str, Any],
        *,
        sentinel: bool = False,
        password: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = port
        self.conf = conf
        self.sentinel = sentinel
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "redis.log"

    def __repr__(self) -> str:
        return f"<RedisProcess {'sentinel' if self.sentinel else 'server'} :{self.port}>"

    def _write_conf(self) -> Path:
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f'dir "{self.workdir}"',
            f'logfile "{self.log}"',
            "daemonize no",
        ]
        if not self.sentinel:
            lines += ['save ""', "appendonly no"]
        for key, value in self.conf.items():
            for item in value if isinstance(value, list) else [value]:
                lines.append(f"{key} {item}")
        path = self.workdir / ("sentinel.conf" if self.sentinel else "redis.conf")
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, timeout: float = 10.0) -> RedisProcess:
        """Start the process and wait (bounded) until it answers PING."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self._write_conf()
        args = [require_redis("redis-server")["redis-server"], str(conf)]
        if self.sentinel:
            args.append("--sentinel")
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        if self not in _STARTED:
            _STARTED.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"{self!r} exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                if self.client(timeout=0.2).ping():
                    return self
            time.sleep(0.01)
        self.kill()
        pytest.fail(f"{self!r} did not answer PING within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def client(self, timeout: float = 2.0) -> Any:
        """A fresh redis-py client to this process (admin commands in fixtures)."""
        import redis

        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=None,
        )

    def info(self, section: str) -> dict[str, Any]:
        client = self.client()
        try:
            return dict(client.info(section))
        finally:
            client.close()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL and reap (a crash, as the fault tests want it)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


def stop_all() -> None:
    """Kill every process this session started (idempotent)."""
    while _STARTED:
        _STARTED.pop().kill()


atexit.register(stop_all)


@dataclass
class Standalone:
    server: RedisProcess

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.server.port}/0"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.server.workdir / 'redis.sock'}"


@dataclass
class SentinelSet:
    master: RedisProcess
    replica: RedisProcess
    sentinels: list[RedisProcess]
    service_name: str = SERVICE

    @property
    def addresses(self) -> tuple[tuple[str, int], ...]:
        return tuple(("127.0.0.1", s.port) for s in self.sentinels)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service_name}"

    def current_master_port(self) -> int:
        client = self.sentinels[0].client()
        try:
            _host, port = client.sentinel_get_master_addr_by_name(self.service_name)
        finally:
            client.close()
        return int(port)

    def stop(self) -> None:
        for p in (*self.sentinels, self.replica, self.master):
            p.kill()


@dataclass
class Cluster:
    nodes: list[RedisProcess]
    by_port: dict[int, RedisProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_port = {n.port: n for n in self.nodes}

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    @property
    def startup_nodes(self) -> tuple[tuple[str, int], ...]:
        return tuple(("127.0.0.1", n.port) for n in self.nodes)

    def masters(self) -> list[RedisProcess]:
        """The processes that are masters now (asks a live node)."""
        for node in self.nodes:
            if node.alive:
                client = node.client()
                try:
                    slots = client.execute_command("CLUSTER", "SLOTS")
                finally:
                    client.close()
                return [self.by_port[int(s[2][1])] for s in slots]
        raise RuntimeError("no live cluster node")

    def stop(self) -> None:
        for n in self.nodes:
            n.kill()


def _tmp(base: Path, name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base))


def start_standalone(base: Path, **conf: Any) -> Standalone:
    """One redis-server; ``conf`` adds config lines (lists give repeated lines)."""
    password = conf.pop("_password", None)
    for _ in range(3):
        port = free_port()
        workdir = _tmp(base, "standalone")
        conf = {"unixsocket": f'"{workdir / "redis.sock"}"', "unixsocketperm": 700, **conf}
        proc = RedisProcess(workdir, port, conf, password=password)
        try:
            return Standalone(proc.start())
        except pytest.fail.Exception:
            if "Address already in use" not in proc.log_tail():
                raise
    pytest.fail("could not bind a standalone redis-server")


# A replica is listed in CLUSTER SLOTS only once its offset moved, i.e. after the
# master's first replication PING: 1 s instead of the default 10 s.
_REPL = {"repl-diskless-sync": "yes", "repl-diskless-sync-delay": 0, "repl-ping-replica-period": 1}


def start_sentinel_set(base: Path, down_after_ms: int = 500) -> SentinelSet:
    """A master, one replica linked to it, and three sentinels that see both and each other."""
    master = RedisProcess(_tmp(base, "master"), free_port(), dict(_REPL)).start()
    replica_conf = {**_REPL, "replicaof": f"127.0.0.1 {master.port}"}
    replica = RedisProcess(_tmp(base, "replica"), free_port(), replica_conf).start()
    wait_until(
        lambda: replica.info("replication").get("master_link_status") == "up",
        10,
        "the replica to link",
    )
    sentinels = []
    for _ in range(3):
        conf = {
            "sentinel monitor": f"{SERVICE} 127.0.0.1 {master.port} 2",
            "sentinel down-after-milliseconds": f"{SERVICE} {down_after_ms}",
            "sentinel failover-timeout": f"{SERVICE} 5000",
            "sentinel parallel-syncs": f"{SERVICE} 1",
        }
        sentinels.append(
            RedisProcess(_tmp(base, "sentinel"), free_port(), conf, sentinel=True).start()
        )
    topo = SentinelSet(master, replica, sentinels)

    def healthy() -> bool:
        for s in sentinels:
            client = s.client()
            try:
                state = client.execute_command("SENTINEL", "MASTER", SERVICE)
                replicas = client.execute_command("SENTINEL", "REPLICAS", SERVICE)
            finally:
                client.close()
            state = _pairs(state)
            if int(state[b"num-slaves"]) < 1 or int(state[b"num-other-sentinels"]) < 2:
                return False
            if not any(b"s_down" not in _pairs(r)[b"flags"] for r in replicas):
                return False
        return True

    wait_until(healthy, 15, "three sentinels to see the replica and each other", step=0.05)
    return topo


def _pairs(reply: Any) -> dict[bytes, Any]:
    if isinstance(reply, dict):
        return {(k if isinstance(k, bytes) else str(k).encode()): v for k, v in reply.items()}
    return {reply[i]: reply[i + 1] for i in range(0, len(reply), 2)}


def start_cluster(base: Path, node_timeout_ms: int = 1000) -> Cluster:
    """Six nodes, three masters with one replica each, every node agreeing on the slots."""
    cli = require_redis("redis-server", "redis-cli")["redis-cli"]
    conf = {
        **_REPL,
        "cluster-enabled": "yes",
        "cluster-config-file": "nodes.conf",
        "cluster-node-timeout": node_timeout_ms,
        "cluster-announce-ip": "127.0.0.1",
    }
    nodes = [
        RedisProcess(_tmp(base, "cluster"), free_port(cluster=True), dict(conf)) for _ in range(6)
    ]
    for n in nodes:
        n.start()
    addrs = [f"127.0.0.1:{n.port}" for n in nodes]
    out = subprocess.run(
        [cli, "--cluster", "create", *addrs, "--cluster-replicas", "1", "--cluster-yes"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    if out.returncode != 0:
        pytest.fail(f"redis-cli --cluster create failed: {out.stdout[-2000:]!r}")
    topo = Cluster(nodes)

    def agreed() -> bool:
        views = set()
        for n in nodes:
            client = n.client()
            try:
                info = client.cluster("info")
                slots = client.execute_command("CLUSTER", "SLOTS")
                role = client.info("replication")
            finally:
                client.close()
            if info["cluster_state"] != "ok" or int(info["cluster_known_nodes"]) != 6:
                return False
            if role["role"] == "slave" and role.get("master_link_status") != "up":
                return False
            view = tuple(
                sorted(
                    (int(s[0]), int(s[1]), int(s[2][1]), tuple(sorted(int(r[1]) for r in s[3:])))
                    for s in slots
                )
            )
            if len(view) != 3 or any(len(v[3]) != 1 for v in view):
                return False
            views.add(view)
        return len(views) == 1

    wait_until(agreed, 20, "every cluster node to agree on the topology", step=0.05)
    return topo


@contextlib.contextmanager
def topology(start: Callable[..., Any], base: Path, **kwargs: Any) -> Iterator[Any]:
    """Start a topology for one test (or module) and always stop it afterwards."""
    topo = start(base, **kwargs)
    try:
        yield topo
    finally:
        if hasattr(topo, "stop"):
            topo.stop()
        else:
            topo.server.kill()


# -- pytest fixtures (imported by conftest.py) -------------------------------------------


@pytest.fixture(scope="session")
def redis_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's temp dir for Redis processes; every process is stopped after it."""
    require_redis("redis-server")
    yield tmp_path_factory.mktemp("redis")
    stop_all()


@pytest.fixture(scope="session")
def redis_standalone(redis_base: Path) -> Iterator[Standalone]:
    """A shared standalone server for the whole session (tests use unique prefixes)."""
    with topology(start_standalone, redis_base) as topo:
        yield topo


@pytest.fixture(scope="session")
def redis_sentinel(redis_base: Path) -> Iterator[SentinelSet]:
    """A shared master + replica + 3 sentinels (never killed by tests)."""
    require_redis("redis-server", "redis-sentinel")
    with topology(start_sentinel_set, redis_base) as topo:
        yield topo


@pytest.fixture(scope="session")
def redis_cluster(redis_base: Path) -> Iterator[Cluster]:
    """A shared 6-node cluster (never killed by tests)."""
    with topology(start_cluster, redis_base) as topo:
        yield topo


# -- password, ACL user and TLS -------------------------------------------------------

ADMIN_PASSWORD = "adm1n-Pa55-never-logged"
APP_USER = "cacheapp"
APP_PASSWORD = "app-Pa55-never-logged"
APP_NAMESPACE = "app:"


def make_tls_files(directory: Path) -> dict[str, str]:
    """A test CA, a server certificate for 127.0.0.1/localhost and a client certificate,
    as PEM files in ``directory``; returns their paths by role."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    paths: dict[str, str] = {}

    def write_key(name: str, key: ec.EllipticCurvePrivateKey) -> None:
        path = directory / f"{name}.key"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
        paths[f"{name}_key"] = str(path)

    def write_cert(name: str, cert: x509.Certificate) -> None:
        path = directory / f"{name}.crt"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[f"{name}_cert"] = str(path)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "novacache test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_cert("ca", ca)
    for role, usage in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"test {role}")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if role == "server":
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
        write_key(role, key)
        write_cert(role, builder.sign(ca_key, hashes.SHA256()))
    return paths


@dataclass
class Secured:
    """A server with a default-user password, a limited ACL user and a TLS port that
    requires client certificates."""

    server: RedisProcess
    tls_port: int
    tls: dict[str, str]

    @property
    def port(self) -> int:
        return self.server.port


def start_secured(base: Path) -> Secured:
    workdir = _tmp(base, "secured")
    tls = make_tls_files(workdir)
    tls_port = free_port()
    conf: dict[str, Any] = {
        "requirepass": ADMIN_PASSWORD,
        # The app user: only its namespace and channels, no dangerous commands, but it may
        # name its connection (redis-py does on connect).
        "user": (
            f"{APP_USER} on >{APP_PASSWORD} ~{APP_NAMESPACE}* resetchannels &{APP_NAMESPACE}* "
            "+@all -@dangerous +client|setname"
        ),
        "tls-port": tls_port,
        "tls-cert-file": tls["server_cert"],
        "tls-key-file": tls["server_key"],
        "tls-ca-cert-file": tls["ca_cert"],
        "tls-auth-clients": "yes",
    }
    server = RedisProcess(workdir, free_port(), conf, password=ADMIN_PASSWORD).start()
    return Secured(server, tls_port, tls)


@pytest.fixture(scope="session")
def redis_secured(redis_base: Path) -> Iterator[Secured]:
    """A shared password/ACL/TLS server for the session."""
    topo = start_secured(redis_base)
    try:
        yield topo
    finally:
        topo.server.kill()

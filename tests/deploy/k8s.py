"""The manifests of ``deploy/k8s/`` as data, and their embedded configs and scripts made
runnable on this machine.

Placeholders are filled the same way everywhere: a ConfigMap's config gets exact lines
replaced (``port 6379`` -> a free loopback port, ``bind 0.0.0.0`` -> ``bind 127.0.0.1``,
``dir /data`` -> a temp dir, the sentinel's master -> ``127.0.0.1``); every replaced
line must be in the manifest exactly once, so a changed manifest fails here instead of
silently running something else. A script runs with exactly the environment its
container declares in the manifest, with some of those variables overridden (paths ->
temp dirs, hostnames -> 127.0.0.1, ports -> the test's), never with one it does not
declare (besides ``PATH``). The password is :data:`PASSWORD`, written to the file the
Secret would be mounted as.

Every script runs under ``strace -f -e trace=execve``: each run asserts that no program
it executed had the password, ``-a``/``--pass``/``--user`` or ``-u`` in its argv (what
``ps`` shows), and that the password is not in its output (the pod's log).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tiers.redis_servers import RedisProcess, _tmp, free_port

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# The Kubernetes versions the manifests are validated against: the newest the
# validator knows and the oldest minor release upstream still supports beside it.
KUBERNETES_VERSIONS = ("1.35.0", "1.37.0")
# A test secret in the alphabet the init scripts accept ([A-Za-z0-9+/=._~-], 16-512).
PASSWORD = "k8s-Test.Secret_0123456789+/="
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def require_tool(name: str) -> str:
    """The path of a program the checks need; skip locally, fail in CI, when missing."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/system-deps installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def manifest_files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml")) + sorted(K8S.rglob("*.yml"))


def documents() -> list[tuple[str, dict[str, Any]]]:
    """Every non-empty YAML document under deploy/k8s/, with ``file#index`` as its id."""
    out = []
    for path in manifest_files():
        for i, doc in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
            if doc is not None:
                out.append((f"{path.relative_to(K8S)}#{i}", doc))
    return out


def resource(kind: str, name: str) -> dict[str, Any]:
    found = [d for _, d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name} under deploy/k8s/, found {len(found)}"
    return found[0]


def configmap(name: str) -> dict[str, str]:
    data: dict[str, str] = resource("ConfigMap", name)["data"]
    return data


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a workload (Deployment, StatefulSet, Job)."""
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def all_containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(doc)
    return [*spec.get("initContainers", []), *spec["containers"]]


def container(kind: str, name: str, container_name: str) -> dict[str, Any]:
    found = [c for c in all_containers(resource(kind, name)) if c["name"] == container_name]
    assert len(found) == 1, f"{kind}/{name} has no container {container_name!r}"
    return found[0]


def declared_env(spec: dict[str, Any]) -> dict[str, str | None]:
    """The container's env as Kubernetes would set it: literal values with ``$(VAR)``
    expanded; variables set from the downward API, a Secret or a ConfigMap are ``None``
    (the caller must override them)."""
    env: dict[str, str | None] = {}
    for item in spec.get("env", []):
        if "value" in item:
            value = re.sub(
                r"\$\((\w+)\)",
                lambda m: env.get(m.group(1)) or m.group(0),
                str(item["value"]),
            )
            env[item["name"]] = value
        else:
            env[item["name"]] = None
    return env


def fill(text: str, lines: dict[str, str]) -> str:
    """``text`` with each line that equals a key replaced by its value (each key must be
    a line of ``text`` exactly once)."""
    out = text.splitlines()
    for old, new in lines.items():
        hits = [i for i, line in enumerate(out) if line == old]
        assert len(hits) == 1, f"the manifest's config has {len(hits)} lines {old!r}, wanted 1"
        out[hits[0]] = new
    return "\n".join(out) + "\n"


def write_password(directory: Path, password: str = PASSWORD) -> Path:
    """The Secret as the pods mount it: one file with the password (no newline)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "password"
    path.write_text(password)
    path.chmod(0o440)
    return path


@dataclass
class ScriptRun:
    """One real run of a manifest's script."""

    returncode: int
    stdout: str
    stderr: str
    argvs: list[list[str]]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


_EXECVE = re.compile(r'execve\("(?:[^"\\]|\\.)*", \[(.*?)\](?:\.\.\.)?, ')
_CSTRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
FORBIDDEN_FLAGS = ("-a", "--pass", "--user", "-u", "--askpass")


def run_script(
    configmap_name: str,
    key: str,
    spec: dict[str, Any],
    overrides: dict[str, str],
    workdir: Path,
    *,
    timeout: float = 120,
    password: str = PASSWORD,
) -> ScriptRun:
    """Run ``key`` of the ConfigMap with ``sh`` (as the manifests do) and the container's
    declared env plus ``overrides``; assert nothing it executed or printed shows the
    password."""
    strace = require_tool("strace")
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / key
    script.write_text(configmap(configmap_name)[key])
    env = declared_env(spec)
    unknown = set(overrides) - set(env)
    assert not unknown, f"{key}: overrides {sorted(unknown)} are not declared by the container"
    env.update(overrides)
    missing = [name for name, value in env.items() if value is None]
    assert not missing, f"{key}: no value for {missing} (set from the cluster: override them)"
    run_env = {name: value for name, value in env.items() if value is not None}
    run_env["PATH"] = SYSTEM_PATH
    trace = workdir / f"{key}.strace"
    traced_cmd = [strace, "-f", "-qq", "-s", "8192", "-e", "trace=execve", "-o", str(trace)]
    proc = subprocess.run(
        [*traced_cmd, "sh", str(script)],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    traced = trace.read_text(errors="replace")
    argvs = [_CSTRING.findall(m.group(1)) for m in _EXECVE.finditer(traced)]
    assert argvs, f"strace saw no execve:\n{traced}"
    assert argvs[0][:1] == ["sh"], f"strace saw no execve of the script:\n{traced}"
    assert password not in traced, f"{key}: the password is in a command line"
    for argv in argvs:
        if Path(argv[0]).name == "redis-cli" or (argv and argv[0] == "redis-cli"):
            bad = [flag for flag in FORBIDDEN_FLAGS if flag in argv]
            assert not bad, f"{key}: redis-cli with {bad}: {argv}"
    assert password not in proc.stdout + proc.stderr, f"{key}: the password is in its output"
    return ScriptRun(proc.returncode, proc.stdout, proc.stderr, argvs)


def programs(run: ScriptRun) -> set[str]:
    """The names of the programs a run executed."""
    return {Path(argv[0]).name for argv in run.argvs if argv}


class RenderedProcess(RedisProcess):
    """A :class:`RedisProcess` started from a config file a manifest's script rendered,
    not one it writes itself; only a ``logfile`` line is appended (the manifests log to
    stdout) so that a failure shows the server's log."""

    def __init__(self, workdir: Path, port: int, conf_path: Path, *, sentinel: bool = False):
        super().__init__(workdir, port, {}, sentinel=sentinel, password=PASSWORD)
        self.conf_path = conf_path

    def _write_conf(self) -> Path:
        with self.conf_path.open("a", encoding="utf-8") as f:
            f.write(f'logfile "{self.log}"\n')
        return self.conf_path


@dataclass
class ClusterNode:
    """One node of deploy/k8s/redis-cluster.yaml, run here: the ConfigMap's redis.conf
    with its placeholders filled, the runtime config rendered by the real init.sh."""

    workdir: Path
    port: int
    process: RedisProcess | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, port: int | None = None) -> ClusterNode:
        """(Re)start, on a new port if given: like a pod that came back with a new IP."""
        if port is not None:
            self.port = port
        etc, run, data = (self.workdir / d for d in ("etc", "run", "data"))
        for d in (etc, run, data):
            d.mkdir(parents=True, exist_ok=True)
        template = etc / "redis.conf"
        template.write_text(
            fill(
                configmap("redis-cluster")["redis.conf"],
                {
                    "port 6379": f"port {self.port}",
                    "bind 0.0.0.0": "bind 127.0.0.1",
                    "dir /data": f'dir "{data}"',
                },
            )
        )
        init = container("StatefulSet", "redis-cluster", "config")
        run_conf = run / "redis.conf"
        result = run_script(
            "redis-cluster",
            "init.sh",
            init,
            {
                "POD_IP": "127.0.0.1",
                "REDIS_TEMPLATE": str(template),
                "REDIS_RUNTIME_CONF": str(run_conf),
                "REDIS_PASSWORD_FILE": str(write_password(self.workdir / "secret")),
            },
            self.workdir / "scripts",
        )
        assert result.returncode == 0, result.output
        self.process = RenderedProcess(self.workdir, self.port, run_conf).start()
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()

    def env(self) -> dict[str, str]:
        """Overrides for the main container's probe and preStop scripts."""
        return {
            "REDIS_PORT": str(self.port),
            "REDIS_PASSWORD_FILE": str(self.workdir / "secret" / "password"),
        }


def start_cluster_nodes(base: Path, count: int = 6) -> list[ClusterNode]:
    """``count`` fresh, empty cluster nodes (the StatefulSet's pods before the Job)."""
    return [
        ClusterNode(_tmp(base, "k8s-cluster"), free_port(cluster=True)).start()
        for _ in range(count)
    ]


def form_cluster(nodes: list[ClusterNode], workdir: Path, timeout_s: int = 60) -> ScriptRun:
    """Run the Job's form-cluster.sh against ``nodes``."""
    job = container("Job", "redis-cluster-form", "form")
    return run_script(
        "redis-cluster",
        "form-cluster.sh",
        job,
        {
            "REDIS_NODES": " ".join(n.address for n in nodes),
            "FORM_TIMEOUT_SECONDS": str(timeout_s),
            "REDIS_PASSWORD_FILE": str(write_password(workdir / "secret")),
        },
        workdir,
        timeout=timeout_s + 30,
    )


@dataclass
class DataNode:
    """One pod of the "redis" StatefulSet of deploy/k8s/redis-sentinel.yaml, run here:
    the ConfigMap's redis.conf with its placeholders filled, the runtime config
    rendered by the real redis-init.sh (which asks the sentinels who the master is)."""

    workdir: Path
    port: int
    ordinal: int
    process: RedisProcess | None = None
    init: ScriptRun | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def runtime_conf(self) -> Path:
        return self.workdir / "run" / "redis.conf"

    def start(self, initial_master: str, sentinels: list[str]) -> DataNode:
        etc, run, data = (self.workdir / d for d in ("etc", "run", "data"))
        for d in (etc, run, data):
            d.mkdir(parents=True, exist_ok=True)
        template = etc / "redis.conf"
        template.write_text(
            fill(
                configmap("redis-sentinel")["redis.conf"],
                {
                    "port 6379": f"port {self.port}",
                    "bind 0.0.0.0": "bind 127.0.0.1",
                    "dir /data": f'dir "{data}"',
                },
            )
        )
        self.init = run_script(
            "redis-sentinel",
            "redis-init.sh",
            container("StatefulSet", "redis", "config"),
            {
                "POD_NAME": f"redis-{self.ordinal}",
                "POD_IP": "127.0.0.1",
                "ANNOUNCE_HOST": "127.0.0.1",
                "REDIS_PORT": str(self.port),
                "INITIAL_MASTER": initial_master,
                "SENTINELS": " ".join(sentinels),
                "REDIS_TEMPLATE": str(template),
                "REDIS_RUNTIME_CONF": str(self.runtime_conf),
                "REDIS_PASSWORD_FILE": str(write_password(self.workdir / "secret")),
            },
            self.workdir / "scripts",
        )
        assert self.init.returncode == 0, self.init.output
        self.process = RenderedProcess(self.workdir, self.port, self.runtime_conf).start()
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()

    def env(self) -> dict[str, str]:
        return {
            "REDIS_PORT": str(self.port),
            "REDIS_PASSWORD_FILE": str(self.workdir / "secret" / "password"),
        }


@dataclass
class SentinelNode:
    """One pod of the "redis-sentinel" StatefulSet, run here: the ConfigMap's
    sentinel.conf (placeholders filled) as a read-only template, copied by the real
    sentinel-init.sh to the writable file redis-sentinel runs from."""

    workdir: Path
    port: int
    ordinal: int
    process: RedisProcess | None = None
    init: ScriptRun | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def template(self) -> Path:
        return self.workdir / "etc" / "sentinel.conf"

    @property
    def conf(self) -> Path:
        return self.workdir / "run" / "sentinel.conf"

    def start(self, initial_master_port: int, sentinels: list[str]) -> SentinelNode:
        etc, run = self.workdir / "etc", self.workdir / "run"
        for d in (etc, run):
            d.mkdir(parents=True, exist_ok=True)
        if self.template.exists():
            self.template.chmod(0o644)
        self.template.write_text(
            fill(
                configmap("redis-sentinel")["sentinel.conf"],
                {
                    "port 26379": f"port {self.port}",
                    "bind 0.0.0.0": "bind 127.0.0.1",
                    "dir /run/sentinel": f'dir "{run}"',
                    "sentinel monitor mymaster redis-0.redis-headless.novacron.svc 6379 2": (
                        f"sentinel monitor mymaster 127.0.0.1 {initial_master_port} 2"
                    ),
                },
            )
        )
        self.template.chmod(0o444)  # as a ConfigMap file: never written
        self.init = run_script(
            "redis-sentinel",
            "sentinel-init.sh",
            container("StatefulSet", "redis-sentinel", "config"),
            {
                "POD_NAME": f"redis-sentinel-{self.ordinal}",
                "ANNOUNCE_HOST": "127.0.0.1",
                "SENTINEL_PORT": str(self.port),
                "SENTINELS": " ".join(sentinels),
                "SENTINEL_TEMPLATE": str(self.template),
                "SENTINEL_CONF": str(self.conf),
                "REDIS_PASSWORD_FILE": str(write_password(self.workdir / "secret")),
            },
            self.workdir / "scripts",
        )
        assert self.init.returncode == 0, self.init.output
        self.process = RenderedProcess(self.workdir, self.port, self.conf, sentinel=True).start()
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()

    def env(self) -> dict[str, str]:
        return {
            "REDIS_PORT": str(self.port),
            "REDIS_PASSWORD_FILE": str(self.workdir / "secret" / "password"),
        }

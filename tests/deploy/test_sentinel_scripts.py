"""The scripts of deploy/k8s/redis-sentinel.yaml, run for real: three data nodes
started through redis-init.sh, three sentinels through sentinel-init.sh (a writable
copy of the read-only template, which Sentinel rewrites), their probes, and pods that
restart after a failover. Every run is traced: no argv holds the password."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tiers.redis_servers import _pairs, _tmp, free_port, require_redis, wait_until

from .k8s import (
    DataNode,
    ScriptRun,
    SentinelNode,
    configmap,
    container,
    run_script,
)

DATA = container("StatefulSet", "redis", "redis")
SENTINEL = container("StatefulSet", "redis-sentinel", "sentinel")
NAME = "mymaster"


@dataclass
class Topology:
    data: list[DataNode]
    sentinels: list[SentinelNode]

    def stop(self) -> None:
        for n in (*self.sentinels, *self.data):
            n.stop()

    def sentinel_addresses(self) -> list[str]:
        return [s.address for s in self.sentinels]

    def master_port(self, sentinel: SentinelNode) -> int:
        assert sentinel.process is not None
        client = sentinel.process.client()
        try:
            _host, port = client.sentinel_get_master_addr_by_name(NAME)
        finally:
            client.close()
        return int(port)


def sentinel_state(sentinel: SentinelNode) -> dict[bytes, Any]:
    assert sentinel.process is not None
    client = sentinel.process.client()
    try:
        return _pairs(client.execute_command("SENTINEL", "MASTER", NAME))
    finally:
        client.close()


def start_topology(base: Path) -> Topology:
    """Pod 0 first (no sentinel answers yet: the initial master), then pods 1 and 2,
    then the sentinels, as the StatefulSets start them on a fresh namespace."""
    require_redis("redis-server", "redis-sentinel", "redis-cli")
    sentinel_ports = [free_port() for _ in range(3)]
    sentinel_addresses = [f"127.0.0.1:{p}" for p in sentinel_ports]
    data = [DataNode(_tmp(base, "k8s-data"), free_port(), i) for i in range(3)]
    topo = Topology(data, [])
    try:
        data[0].start(data[0].address, sentinel_addresses)
        for node in data[1:]:
            node.start(data[0].address, sentinel_addresses)
        for node in data[1:]:
            assert node.process is not None
            wait_until(
                lambda n=node: n.process.info("replication")["master_link_status"] == "up",
                15,
                "a replica to link",
            )
        topo.sentinels = [
            SentinelNode(_tmp(base, "k8s-sentinel"), port, i).start(
                data[0].port, sentinel_addresses
            )
            for i, port in enumerate(sentinel_ports)
        ]

        def healthy() -> bool:
            for s in topo.sentinels:
                state = sentinel_state(s)
                if int(state[b"num-slaves"]) != 2 or int(state[b"num-other-sentinels"]) != 2:
                    return False
            return True

        wait_until(healthy, 20, "each sentinel to see 2 replicas and 2 other sentinels", 0.1)
    except BaseException:
        topo.stop()
        raise
    return topo


@pytest.fixture(scope="module")
def topology(redis_base: Path) -> Iterator[Topology]:
    """A topology the tests only read."""
    topo = start_topology(redis_base)
    try:
        yield topo
    finally:
        topo.stop()


def data_probe(node: DataNode, key: str, **overrides: str) -> ScriptRun:
    return run_script(
        "redis-sentinel", key, DATA, {**node.env(), **overrides}, node.workdir / "probes"
    )


def sentinel_probe(node: SentinelNode, key: str, **overrides: str) -> ScriptRun:
    return run_script(
        "redis-sentinel", key, SENTINEL, {**node.env(), **overrides}, node.workdir / "probes"
    )


def test_data_nodes_start_as_master_and_replicas(topology: Topology) -> None:
    master, *replicas = topology.data
    assert master.init is not None
    assert "no sentinel answers" in master.init.stdout
    assert "starting as the master" in master.init.stdout
    assert "replicaof" not in master.runtime_conf.read_text()
    for node in replicas:
        assert f"replicaof 127.0.0.1 {master.port}\n" in node.runtime_conf.read_text()
    for node in topology.data:
        assert data_probe(node, "liveness.sh").returncode == 0
        ready = data_probe(node, "redis-readiness.sh")
        assert ready.returncode == 0, ready.output


def test_sentinel_runs_from_a_writable_copy_and_rewrites_it(topology: Topology) -> None:
    template = configmap("redis-sentinel")["sentinel.conf"]
    for s in topology.sentinels:
        # The template (a ConfigMap file: read-only) is untouched ...
        assert s.template.stat().st_mode & 0o222 == 0
        assert "sentinel monitor" in s.template.read_text()
        assert "requirepass" not in template
        # ... the copy is the file Sentinel was started with, and it rewrote it.
        assert s.process is not None
        assert s.process.conf_path == s.conf  # type: ignore[attr-defined]
        wait_until(
            lambda s=s: "sentinel known-replica" in s.conf.read_text(),
            10,
            "Sentinel to record its replicas in its config file",
        )
        text = s.conf.read_text()
        assert "# Generated by CONFIG REWRITE" in text
        assert text.count("sentinel known-replica mymaster") == 2
        assert text.count("sentinel known-sentinel mymaster") == 2
        # The stable id derived from the pod name survived the rewrite.
        myid = hashlib.sha1(f"redis-sentinel-{s.ordinal}".encode()).hexdigest()
        assert f"sentinel myid {myid}\n" in text


def test_sentinel_refuses_a_read_only_config_file(tmp_path: Path) -> None:
    """Why the copy: the seed started redis-sentinel on the ConfigMap's file, which is
    read-only, and Sentinel refuses to start on a config it cannot rewrite. (Run as an
    unprivileged user: root may write a read-only file.)"""
    sentinel = require_redis("redis-sentinel")["redis-sentinel"]
    directory = Path(tempfile.mkdtemp(prefix="k8s-ro-"))
    try:
        directory.chmod(0o755)
        conf = directory / "sentinel.conf"
        conf.write_text(
            f"port {free_port()}\nbind 127.0.0.1\n"
            f"sentinel monitor {NAME} 127.0.0.1 {free_port()} 2\n"
        )
        conf.chmod(0o444)
        command = [sentinel, str(conf)]
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            assert setpriv is not None, "setpriv (util-linux) is needed to drop root"
            command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        out = subprocess.run(command, capture_output=True, text=True, timeout=20, cwd="/")
        assert out.returncode != 0
        assert "is not writable" in out.stdout + out.stderr
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_sentinel_probes(topology: Topology, tmp_path: Path) -> None:
    wrong = tmp_path / "password"
    wrong.write_text("not-the-Password-0123")
    for s in topology.sentinels:
        assert sentinel_probe(s, "liveness.sh").returncode == 0
        ready = sentinel_probe(s, "sentinel-readiness.sh")
        assert ready.returncode == 0, ready.output
        assert sentinel_probe(s, "sentinel-readiness.sh", MASTER_NAME="unknown").returncode == 1
        assert (
            sentinel_probe(s, "sentinel-readiness.sh", REDIS_PASSWORD_FILE=str(wrong)).returncode
            == 1
        )


def test_a_replica_without_its_master_is_alive_but_not_ready(redis_base: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    node = DataNode(_tmp(redis_base, "k8s-data"), free_port(), 1).start(nowhere, [nowhere])
    try:
        assert f"replicaof 127.0.0.1 {nowhere.rpartition(':')[2]}" in node.runtime_conf.read_text()
        assert data_probe(node, "liveness.sh").returncode == 0
        ready = data_probe(node, "redis-readiness.sh")
        assert ready.returncode == 1
        assert "no replication link up" in ready.stderr
    finally:
        node.stop()


def test_pods_restarted_after_a_failover_follow_the_sentinels(redis_base: Path) -> None:
    """After a failover the template's master (pod 0) is stale: a restarted data pod
    and a restarted sentinel both ask the other sentinels, and follow the new master."""
    topo = start_topology(redis_base)
    try:
        old = topo.data[0]
        first = topo.sentinels[0]
        assert first.process is not None
        client = first.process.client()
        client.execute_command("SENTINEL", "FAILOVER", NAME)
        client.close()
        wait_until(
            lambda: all(topo.master_port(s) != old.port for s in topo.sentinels),
            20,
            "every sentinel to report the new master",
            0.1,
        )
        new_port = topo.master_port(first)

        # The old master's pod restarts: its init container asks the sentinels.
        old.stop()
        old.start(old.address, topo.sentinel_addresses())
        assert old.init is not None
        assert f"says the master is 127.0.0.1:{new_port}" in old.init.stdout
        assert f"replicaof 127.0.0.1 {new_port}\n" in old.runtime_conf.read_text()
        wait_until(
            lambda: data_probe(old, "redis-readiness.sh").returncode == 0,
            20,
            "the restarted old master to be a ready replica",
            0.2,
        )

        # A sentinel restarts: it monitors the current master, not the template's.
        first.stop()
        first.start(old.port, topo.sentinel_addresses())
        assert first.init is not None
        assert "says the master is" in first.init.stdout
        assert f"sentinel monitor mymaster 127.0.0.1 {new_port} 2" in first.conf.read_text()
        assert topo.master_port(first) == new_port
        assert sentinel_probe(first, "sentinel-readiness.sh").returncode == 0

        # Same name, same id: the others count it once (no stale sentinel entry that
        # would raise the majority a failover needs).
        def counted_once() -> bool:
            return all(
                int(sentinel_state(s)[b"num-other-sentinels"]) == 2
                and int(sentinel_state(s)[b"num-slaves"]) == 2
                for s in topo.sentinels
            )

        wait_until(counted_once, 20, "the sentinels to see 2 others and 2 replicas", 0.1)
    finally:
        topo.stop()

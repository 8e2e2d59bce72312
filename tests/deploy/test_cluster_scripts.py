"""The scripts of deploy/k8s/redis-cluster.yaml, run for real: six redis-server
processes started from the ConfigMap's redis.conf through the init container's
init.sh (the StatefulSet's pods), then the Job's form-cluster.sh, the probes and the
preStop hook against them. Every run is traced: no argv holds the password
(tests/deploy/k8s.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tiers.redis_servers import _tmp, free_port, require_redis, wait_until

from .k8s import (
    PASSWORD,
    ClusterNode,
    ScriptRun,
    container,
    form_cluster,
    programs,
    run_script,
    start_cluster_nodes,
)

MAIN = container("StatefulSet", "redis-cluster", "redis")


def probe(node: ClusterNode, key: str, **overrides: str) -> ScriptRun:
    return run_script(
        "redis-cluster", key, MAIN, {**node.env(), **overrides}, node.workdir / "probes"
    )


def view(nodes: list[ClusterNode]) -> dict[str, Any] | None:
    """The topology every node agrees on (ids, slot owners, one replica per master),
    or None while they do not agree or a node is not ok."""
    views = set()
    for node in nodes:
        assert node.process is not None
        client = node.process.client()
        try:
            info = client.cluster("info")
            raw = client.execute_command("CLUSTER", "NODES")
        finally:
            client.close()
        if info["cluster_state"] != "ok" or int(info["cluster_known_nodes"]) != len(nodes):
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        entries = []
        for line in text.strip().splitlines():
            f = line.split()
            flags = f[2].replace("myself,", "")
            if "fail" in flags:
                return None
            entries.append((f[0], f[1].split("@")[0], flags, f[3] if "slave" in flags else "-"))
        views.add(tuple(sorted(entries)))
    if len(views) != 1:
        return None
    (entries,) = views
    masters = {e[0] for e in entries if "master" in e[2]}
    replicas = [e for e in entries if "slave" in e[2]]
    if len(masters) != 3 or sorted(r[3] for r in replicas) != sorted(masters):
        return None
    return {"ids": {e[0] for e in entries}, "addresses": {e[1] for e in entries}, "raw": entries}


def agreed(nodes: list[ClusterNode], timeout: float = 30) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def check() -> bool:
        v = view(nodes)
        if v is not None:
            found.update(v)
        return v is not None

    wait_until(check, timeout, "every node to agree on 3 masters with 1 replica each", 0.1)
    return found


def role(node: ClusterNode) -> str:
    assert node.process is not None
    return str(node.process.info("replication")["role"])


@pytest.fixture(scope="module")
def cluster_nodes(redis_base: Path) -> Iterator[list[ClusterNode]]:
    """Six fresh nodes from the manifest's config and init.sh, not formed yet."""
    require_redis("redis-server", "redis-cli")
    nodes = start_cluster_nodes(redis_base)
    try:
        yield nodes
    finally:
        for n in nodes:
            n.stop()


@pytest.fixture
def formed(cluster_nodes: list[ClusterNode], redis_base: Path) -> list[ClusterNode]:
    """The six nodes as a healthy cluster (the Job is idempotent: it forms the cluster
    the first time and only checks it afterwards)."""
    run = form_cluster(cluster_nodes, _tmp(redis_base, "k8s-job"))
    assert run.returncode == 0, run.output
    agreed(cluster_nodes)
    return cluster_nodes


def test_job_forms_the_cluster_and_a_second_run_changes_nothing(
    cluster_nodes: list[ClusterNode], redis_base: Path
) -> None:
    # Before the Job: every node is alive but not ready (cluster_state is not ok).
    for node in cluster_nodes:
        assert probe(node, "liveness.sh").returncode == 0
        not_ready = probe(node, "readiness.sh")
        assert not_ready.returncode == 1
        assert "cluster_state is not ok" in not_ready.stderr

    first = form_cluster(cluster_nodes, _tmp(redis_base, "k8s-job"))
    assert first.returncode == 0, first.output
    assert "creating the cluster" in first.stdout
    assert any(argv[:3] == ["redis-cli", "--cluster", "create"] for argv in first.argvs)
    before = agreed(cluster_nodes)
    assert before["addresses"] == {n.address for n in cluster_nodes}

    second = form_cluster(cluster_nodes, _tmp(redis_base, "k8s-job"))
    assert second.returncode == 0, second.output
    assert "a cluster exists" in second.stdout
    assert not any("create" in argv for argv in second.argvs)
    assert not any("forget" in argv or "replicate" in argv for argv in second.argvs)
    assert agreed(cluster_nodes)["raw"] == before["raw"]

    for node in cluster_nodes:
        assert probe(node, "readiness.sh").returncode == 0
        assert probe(node, "liveness.sh").returncode == 0


def test_probes_fail_with_a_wrong_password(formed: list[ClusterNode], tmp_path: Path) -> None:
    wrong = tmp_path / "password"
    wrong.write_text("not-the-Password-0123")
    for key in ("readiness.sh", "liveness.sh"):
        run = probe(formed[0], key, REDIS_PASSWORD_FILE=str(wrong))
        assert run.returncode == 1, (key, run.output)


def test_pre_stop_hands_a_master_over_to_its_replica(formed: list[ClusterNode]) -> None:
    master = next(n for n in formed if role(n) == "master")
    run = probe(master, "pre-stop.sh")
    assert run.returncode == 0, run.output
    assert "now a replica" in run.stdout
    assert any(argv[-2:] == ["cluster", "failover"] for argv in run.argvs)
    assert role(master) == "slave"
    agreed(formed)

    replica = next(n for n in formed if role(n) == "slave")
    run = probe(replica, "pre-stop.sh")
    assert run.returncode == 0, run.output
    assert not any("failover" in argv for argv in run.argvs)  # a replica hands nothing over
    assert role(replica) == "slave"


def test_job_repairs_a_cluster_whose_nodes_all_came_back_elsewhere(
    formed: list[ClusterNode], redis_base: Path
) -> None:
    """All pods restarted with new IPs (here: new ports), each node's nodes.conf still
    names the others' old addresses: only a re-run of the Job joins them again."""
    before = agreed(formed)
    for node in formed:
        node.stop()
    for node in formed:
        node.start(port=free_port(cluster=True))
    stale = view(formed)  # on their own, the nodes still look for each other elsewhere
    assert stale is None or stale["addresses"] != {n.address for n in formed}
    run = form_cluster(formed, _tmp(redis_base, "k8s-job"))
    assert run.returncode == 0, run.output
    assert any("meet" in argv for argv in run.argvs)
    after = agreed(formed)
    assert after["ids"] == before["ids"]  # the same nodes, with their data and slots
    assert after["addresses"] == {n.address for n in formed}


def test_job_adopts_a_node_that_came_back_empty(
    formed: list[ClusterNode], redis_base: Path
) -> None:
    """A pod whose volume was lost comes back as a new, empty node: the Job forgets the
    old entry everywhere and makes the new node a replica."""
    before = agreed(formed)
    lost = next(n for n in formed if role(n) == "slave")
    assert lost.process is not None
    client = lost.process.client()
    old_id = client.execute_command("CLUSTER", "MYID")
    client.close()
    old_id = old_id.decode() if isinstance(old_id, bytes) else old_id
    lost.stop()
    (lost.workdir / "data" / "nodes.conf").unlink()
    lost.start()
    run = form_cluster(formed, _tmp(redis_base, "k8s-job"))
    assert run.returncode == 0, run.output
    assert f"forgetting {old_id}" in run.stdout
    after = agreed(formed)
    assert old_id not in after["ids"]
    assert len(after["ids"] - before["ids"]) == 1
    assert role(lost) == "slave"


def test_probes_against_a_standalone_server(redis_secured: Any, tmp_path: Path) -> None:
    """The probes against a real password-protected redis-server that is not a cluster
    node: liveness passes, the cluster readiness probe does not."""
    from tiers.redis_servers import ADMIN_PASSWORD

    secret = tmp_path / "password"
    secret.write_text(ADMIN_PASSWORD)
    env = {"REDIS_PORT": str(redis_secured.port), "REDIS_PASSWORD_FILE": str(secret)}
    live = run_script("redis-cluster", "liveness.sh", MAIN, env, tmp_path, password=ADMIN_PASSWORD)
    assert live.returncode == 0, live.output
    assert "redis-cli" in programs(live)
    ready = run_script(
        "redis-cluster", "readiness.sh", MAIN, env, tmp_path, password=ADMIN_PASSWORD
    )
    assert ready.returncode == 1


def test_init_refuses_a_password_it_cannot_write_safely(redis_base: Path) -> None:
    """A password with a space, quote or newline would need quoting in redis.conf (or
    break it): the init container refuses it, and writes nothing."""
    init = container("StatefulSet", "redis-cluster", "config")
    workdir = _tmp(redis_base, "k8s-badpw")
    for bad in ("short", 'with "quote" 0123456789', "new\nline-0123456789abc"):
        secret = workdir / "password"
        secret.write_text(bad)
        conf = workdir / "redis.conf"
        run = run_script(
            "redis-cluster",
            "init.sh",
            init,
            {
                "POD_IP": "127.0.0.1",
                "REDIS_TEMPLATE": "/nonexistent",
                "REDIS_RUNTIME_CONF": str(conf),
                "REDIS_PASSWORD_FILE": str(secret),
            },
            workdir,
            password=bad,
        )
        assert run.returncode == 1
        assert "password must" in run.stderr
        assert not conf.exists()
    assert PASSWORD  # the valid test secret is used everywhere else

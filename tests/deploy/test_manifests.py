"""deploy/k8s/ as a Kubernetes operator would review it, checked by machine: every
document valid for a named Kubernetes version (strict: unknown fields fail), every
embedded config accepted by the real redis-server / redis-sentinel, every embedded
script parsed by sh (and shellcheck), and the properties the seed lacked (no password
on a command line, hardened pods, PDBs, NetworkPolicies, probes that exist)."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tiers.redis_servers import RedisProcess, _tmp, free_port, wait_until

from .k8s import (
    KUBERNETES_VERSIONS,
    PASSWORD,
    RenderedProcess,
    all_containers,
    configmap,
    declared_env,
    documents,
    fill,
    manifest_files,
    pod_spec,
    require_tool,
    resource,
)

DOCS = documents()
WORKLOADS = [(i, d) for i, d in DOCS if d["kind"] in ("Deployment", "StatefulSet", "Job")]
CONFIGMAPS = [d for _, d in DOCS if d["kind"] == "ConfigMap"]
SCRIPTS = [
    (cm["metadata"]["name"], key, text)
    for cm in CONFIGMAPS
    for key, text in cm["data"].items()
    if key.endswith(".sh")
]
REDIS_CONFS = [
    (cm["metadata"]["name"], key) for cm in CONFIGMAPS for key in cm["data"] if key == "redis.conf"
]
SENTINEL_CONFS = [
    (cm["metadata"]["name"], key)
    for cm in CONFIGMAPS
    for key in cm["data"]
    if key == "sentinel.conf"
]


def _ids(items: list[Any]) -> list[str]:
    return [f"{i[0]}/{i[1]}" if isinstance(i, tuple) else str(i) for i in items]


def test_there_is_something_to_check() -> None:
    kinds = {d["kind"] for _, d in DOCS}
    assert {"StatefulSet", "Job", "PodDisruptionBudget", "NetworkPolicy", "Deployment"} <= kinds
    assert len(REDIS_CONFS) == 2
    assert len(SENTINEL_CONFS) == 1
    assert len(SCRIPTS) >= 10


# -- schema -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def validator() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        if __import__("os").environ.get("CI"):
            pytest.fail("kubernetes-validate is not installed")
        pytest.skip("kubernetes-validate is not installed")
    return kubernetes_validate


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("doc_id", "doc"), DOCS, ids=[i for i, _ in DOCS])
def test_document_is_valid_for_kubernetes(
    validator: Any, version: str, doc_id: str, doc: dict[str, Any]
) -> None:
    validator.validate(doc, version, strict=True)


def test_the_validator_rejects_an_unknown_field(validator: Any) -> None:
    """The check above can fail: strict validation rejects a misspelled field."""
    doc = copy.deepcopy(resource("StatefulSet", "redis-cluster"))
    pod_spec(doc)["containers"][0]["readinesProbe"] = {"exec": {"command": ["true"]}}
    with pytest.raises(validator.ValidationError):
        validator.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)


def test_every_file_is_yaml_with_a_kind() -> None:
    assert manifest_files()
    for doc_id, doc in DOCS:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), doc_id
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "novacron", doc_id


# -- the embedded configs, started for real -------------------------------------------


@pytest.mark.parametrize(("cm", "key"), REDIS_CONFS, ids=_ids(REDIS_CONFS))
def test_redis_conf_is_accepted_by_redis_server(redis_base: Path, cm: str, key: str) -> None:
    """The ConfigMap's redis.conf, placeholders filled, with the two lines the init
    container adds (the password): redis-server starts with it and serves."""
    workdir = _tmp(redis_base, "k8s-conf")
    port = free_port(cluster=True)
    conf = workdir / "template.conf"
    conf.write_text(
        fill(
            configmap(cm)[key],
            {"port 6379": f"port {port}", "bind 0.0.0.0": "bind 127.0.0.1", "dir /data": ""},
        )
    )
    # RedisProcess writes port/bind/dir/logfile first; the include follows (as the
    # rendered runtime config includes the ConfigMap's file).
    server = RedisProcess(
        workdir,
        port,
        {"include": str(conf), "requirepass": PASSWORD, "masterauth": PASSWORD},
        password=PASSWORD,
    ).start()
    try:
        client = server.client()
        assert client.ping() is True
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        assert int(client.config_get("maxmemory")["maxmemory"]) == 1200 * 1024 * 1024
        client.close()
    finally:
        server.kill()


@pytest.mark.parametrize(("cm", "key"), SENTINEL_CONFS, ids=_ids(SENTINEL_CONFS))
def test_sentinel_conf_is_accepted_and_rewritten(redis_base: Path, cm: str, key: str) -> None:
    """The sentinel template, placeholders filled, on a writable copy plus the lines
    sentinel-init.sh adds: redis-sentinel starts, answers PING with the password and
    rewrites the file it was started with (so it must not be a ConfigMap file)."""
    require_tool("redis-sentinel")
    workdir = _tmp(redis_base, "k8s-sentinel-conf")
    port = free_port()
    master = free_port()  # nothing listens: Sentinel accepts a master that is down
    text = fill(
        configmap(cm)[key],
        {
            "port 26379": f"port {port}",
            "bind 0.0.0.0": "bind 127.0.0.1",
            "dir /run/sentinel": f'dir "{workdir}"',
            "sentinel monitor mymaster redis-0.redis-headless.novacron.svc 6379 2": (
                f"sentinel monitor mymaster 127.0.0.1 {master} 2"
            ),
        },
    )
    text += f"requirepass {PASSWORD}\nsentinel auth-pass mymaster {PASSWORD}\n"
    conf = workdir / "sentinel.conf"
    conf.write_text(text)
    sentinel = RenderedProcess(workdir, port, conf, sentinel=True).start()
    try:
        client = sentinel.client()
        assert client.ping() is True
        assert client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster") == [
            b"127.0.0.1",
            str(master).encode(),
        ]
        client.close()
        wait_until(
            lambda: "# Generated by CONFIG REWRITE" in conf.read_text(),
            10,
            "Sentinel to rewrite its config file",
        )
        assert re.search(r"^sentinel myid [0-9a-f]{40}$", conf.read_text(), re.M)
    finally:
        sentinel.kill()


# -- the embedded scripts ---------------------------------------------------------------


@pytest.mark.parametrize("shell", ["sh", "dash", "bash"])
@pytest.mark.parametrize(("cm", "key", "text"), SCRIPTS, ids=_ids(SCRIPTS))
def test_script_parses(tmp_path: Path, shell: str, cm: str, key: str, text: str) -> None:
    program = require_tool(shell)
    assert text.startswith("#!/bin/sh\n"), f"{cm}/{key} is not a POSIX sh script"
    script = tmp_path / key
    script.write_text(text)
    out = subprocess.run([program, "-n", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(("cm", "key", "text"), SCRIPTS, ids=_ids(SCRIPTS))
def test_script_passes_shellcheck(tmp_path: Path, cm: str, key: str, text: str) -> None:
    shellcheck = require_tool("shellcheck")
    script = tmp_path / key
    script.write_text(text)
    out = subprocess.run(
        [shellcheck, "--shell=sh", "--severity=style", str(script)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout


@pytest.mark.parametrize(("cm", "key", "text"), SCRIPTS, ids=_ids(SCRIPTS))
def test_script_never_puts_a_password_on_a_command_line(cm: str, key: str, text: str) -> None:
    """Static half of the check (the dynamic half traces every run: k8s.run_script)."""
    for line in text.splitlines():
        if "redis-cli" in line:
            assert not re.search(r"\s(-a|--pass|--user|-u)(\s|$)", line), line
    # The password variable only feeds printf (a shell builtin: never exec'd, so never
    # in an argv) writing a file, or REDISCLI_AUTH, or the checks of its alphabet/length.
    allowed = (
        r"^\s*printf '[^']*' .*\"\$password\"",
        r"^\s*REDISCLI_AUTH=\$password$",
        r'^\s*case "\$password" in$',
        r"\$\{#password\}",
    )
    for line in text.splitlines():
        if "$password" in line or "${password" in line:
            assert any(re.search(a, line) for a in allowed), f"{cm}/{key}: {line.strip()}"


# -- what the seed lacked -------------------------------------------------------------


def _mounted_configmaps(doc: dict[str, Any], container_spec: dict[str, Any]) -> dict[str, str]:
    """mountPath -> ConfigMap name, for the ConfigMap volumes this container mounts."""
    volumes = {
        v["name"]: v["configMap"]["name"] for v in pod_spec(doc)["volumes"] if "configMap" in v
    }
    return {
        m["mountPath"]: volumes[m["name"]]
        for m in container_spec.get("volumeMounts", [])
        if m["name"] in volumes
    }


def _commands(container_spec: dict[str, Any]) -> list[list[str]]:
    out = [list(container_spec.get("command", [])) + list(container_spec.get("args", []))]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        exec_ = container_spec.get(probe, {}).get("exec")
        if exec_:
            out.append(exec_["command"])
    pre_stop = container_spec.get("lifecycle", {}).get("preStop", {}).get("exec")
    if pre_stop:
        out.append(pre_stop["command"])
    return [c for c in out if c]


@pytest.mark.parametrize(("doc_id", "doc"), WORKLOADS, ids=[i for i, _ in WORKLOADS])
def test_commands_and_probes_run_scripts_that_exist_without_a_password(
    doc_id: str, doc: dict[str, Any]
) -> None:
    for c in all_containers(doc):
        mounts = _mounted_configmaps(doc, c)
        for command in _commands(c):
            joined = " ".join(command)
            assert not re.search(r"(^|\s)(-a|--pass|-u)(\s|$)", joined), (c["name"], command)
            assert "$(" not in joined, f"{c['name']}: env expanded into argv: {command}"
            for word in command:
                if word.endswith(".sh"):
                    directory, _, key = word.rpartition("/")
                    assert directory in mounts, f"{c['name']}: {word} is not mounted"
                    assert key in configmap(mounts[directory]), f"{word} is not in the ConfigMap"


@pytest.mark.parametrize(("doc_id", "doc"), WORKLOADS, ids=[i for i, _ in WORKLOADS])
def test_pods_are_hardened(doc_id: str, doc: dict[str, Any]) -> None:
    spec = pod_spec(doc)
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    pod_sc = spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] > 0
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in all_containers(doc):
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["capabilities"] == {"drop": ["ALL"]}, c["name"]
        for part in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][part]), (c["name"], part)
        assert ":" in c["image"], c["image"]
        assert not c["image"].endswith(":latest"), c["image"]


@pytest.mark.parametrize(("doc_id", "doc"), WORKLOADS, ids=[i for i, _ in WORKLOADS])
def test_secrets_are_never_literal_and_redis_reads_them_from_files(
    doc_id: str, doc: dict[str, Any]
) -> None:
    for c in all_containers(doc):
        for item in c.get("env", []):
            if "value" in item:
                assert PASSWORD not in item["value"]
                assert not re.search(r"pass|secret|auth", item["name"], re.I) or item[
                    "name"
                ].endswith("_FILE"), f"{c['name']}: {item['name']} has a literal value"
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                # Only programs that read no file take the password from env: the
                # exporter and the application; Redis and its scripts read the file.
                assert c["name"] in ("exporter", "app"), (c["name"], item["name"])


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("name", ["redis-cluster", "redis", "redis-sentinel", "novacache-example"])
def test_each_workload_has_a_pod_disruption_budget(name: str) -> None:
    kind = "Deployment" if name == "novacache-example" else "StatefulSet"
    labels = resource(kind, name)["spec"]["template"]["metadata"]["labels"]
    pdbs = [
        d
        for _, d in DOCS
        if d["kind"] == "PodDisruptionBudget"
        and _selects(d["spec"]["selector"]["matchLabels"], labels)
    ]
    assert len(pdbs) == 1
    assert pdbs[0]["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("name", ["redis-cluster", "redis", "redis-sentinel"])
def test_network_policy_admits_only_its_peers_and_the_app(name: str) -> None:
    sts = resource("StatefulSet", name)
    labels = sts["spec"]["template"]["metadata"]["labels"]
    policies = [
        d
        for _, d in DOCS
        if d["kind"] == "NetworkPolicy"
        and _selects(d["spec"]["podSelector"]["matchLabels"], labels)
    ]
    assert len(policies) == 1
    policy = policies[0]["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    app_labels = resource("Deployment", "novacache-example")["spec"]["template"]["metadata"][
        "labels"
    ]
    peers = [p for rule in policy["ingress"] for p in rule["from"]]
    assert all(set(p) <= {"podSelector", "namespaceSelector"} for p in peers)
    # The application's pods are admitted, and a pod without the client label is not.
    assert any(
        _selects(p.get("podSelector", {}).get("matchLabels", {"-": "-"}), app_labels) for p in peers
    )
    stranger = {"app.kubernetes.io/name": "something-else"}
    assert not any(
        "namespaceSelector" not in p and _selects(p["podSelector"]["matchLabels"], stranger)
        for p in peers
    )
    # Every admitted port is one the pods serve.
    served = {
        port["containerPort"] for c in pod_spec(sts)["containers"] for port in c.get("ports", [])
    }
    admitted = {port["port"] for rule in policy["ingress"] for port in rule["ports"]}
    assert admitted <= served


@pytest.mark.parametrize(
    "name", ["redis-cluster-headless", "redis-headless", "redis-sentinel-headless"]
)
def test_headless_services_publish_pods_before_they_are_ready(name: str) -> None:
    spec = resource("Service", name)["spec"]
    assert spec["clusterIP"] == "None"
    assert spec["publishNotReadyAddresses"] is True


def test_cluster_statefulset_starts_all_pods_at_once() -> None:
    """OrderedReady would deadlock: pod 1 waits for pod 0 to be ready, and pod 0 is not
    ready until the Job formed the cluster from all six pods."""
    sts = resource("StatefulSet", "redis-cluster")["spec"]
    assert sts["podManagementPolicy"] == "Parallel"
    assert sts["replicas"] == 6
    job_nodes = declared_env(
        next(c for c in all_containers(resource("Job", "redis-cluster-form")))
    )["REDIS_NODES"]
    assert job_nodes is not None
    assert job_nodes.split() == [
        f"redis-cluster-{i}.{sts['serviceName']}:6379" for i in range(sts["replicas"])
    ]


def test_memory_limit_leaves_room_above_maxmemory() -> None:
    """maxmemory == the container limit (the seed: 2gb in a 2Gi container) gets the pod
    OOM-killed by the first BGSAVE fork or replication buffer."""
    for cm, sts in (("redis-cluster", "redis-cluster"), ("redis-sentinel", "redis")):
        conf = configmap(cm)["redis.conf"]
        maxmemory_mb = int(re.search(r"^maxmemory (\d+)mb$", conf, re.M).group(1))  # type: ignore[union-attr]
        redis = next(
            c for c in pod_spec(resource("StatefulSet", sts))["containers"] if c["name"] == "redis"
        )
        limit = redis["resources"]["limits"]["memory"]
        assert limit.endswith("Gi")
        assert maxmemory_mb <= 0.6 * int(limit[:-2]) * 1024
        assert redis["resources"]["requests"]["memory"] == limit  # no eviction under pressure


def _volume_at(doc: dict[str, Any], container_spec: dict[str, Any], path: str) -> dict[str, Any]:
    """The volume (and its mount) that holds ``path`` in this container."""
    mounts = [
        m
        for m in container_spec["volumeMounts"]
        if path.startswith(m["mountPath"].rstrip("/") + "/")
    ]
    assert len(mounts) == 1, f"{container_spec['name']}: {path} is on {len(mounts)} mounts"
    volume = next(v for v in pod_spec(doc)["volumes"] if v["name"] == mounts[0]["name"])
    return {**volume, "readOnly": mounts[0].get("readOnly", False)}


@pytest.mark.parametrize(
    ("sts", "main", "conf_var", "template_var"),
    [
        ("redis-cluster", "redis", "REDIS_RUNTIME_CONF", "REDIS_TEMPLATE"),
        ("redis", "redis", "REDIS_RUNTIME_CONF", "REDIS_TEMPLATE"),
        ("redis-sentinel", "sentinel", "SENTINEL_CONF", "SENTINEL_TEMPLATE"),
    ],
)
def test_servers_run_from_the_writable_file_their_init_container_renders(
    sts: str, main: str, conf_var: str, template_var: str
) -> None:
    """The server's config argument is the file the init container writes, on a
    writable memory-backed emptyDir shared by both (Sentinel rewrites it; the password
    in it never reaches a disk); the template is the read-only ConfigMap file."""
    doc = resource("StatefulSet", sts)
    init = next(c for c in pod_spec(doc)["initContainers"] if c["name"] == "config")
    server = next(c for c in pod_spec(doc)["containers"] if c["name"] == main)
    env = declared_env(init)
    conf, template = env[conf_var], env[template_var]
    assert conf is not None
    assert template is not None
    assert server["command"][-1] == conf
    for c in (init, server):
        volume = _volume_at(doc, c, conf)
        assert volume["emptyDir"]["medium"] == "Memory"
        assert volume["readOnly"] is False
    assert "configMap" in _volume_at(doc, init, template)
    assert _volume_at(doc, server, conf)["name"] == _volume_at(doc, init, conf)["name"]


def test_app_urls_are_novacache_urls_that_point_at_the_services() -> None:
    """The example app's URLs parse with RedisConfig.from_url (the forms novacache
    accepts) and name the Services, ports and master name the manifests define."""
    from novacache.tiers.redis_config import RedisConfig

    urls = configmap("novacache-example")
    sentinel = RedisConfig.from_url(urls["sentinel-url"], password=PASSWORD)
    assert sentinel.topology == "sentinel"
    sts = resource("StatefulSet", "redis-sentinel")
    headless = resource("Service", sts["spec"]["serviceName"])
    port = headless["spec"]["ports"][0]["port"]
    assert sentinel.sentinels == tuple(
        (f"{sts['metadata']['name']}-{i}.{headless['metadata']['name']}.novacron.svc", port)
        for i in range(sts["spec"]["replicas"])
    )
    monitor = re.search(
        r"^sentinel monitor (\S+) ", configmap("redis-sentinel")["sentinel.conf"], re.M
    )
    assert monitor is not None
    assert sentinel.service_name == monitor.group(1)
    assert PASSWORD not in repr(sentinel)

    cluster = RedisConfig.from_url(urls["cluster-url"])
    assert cluster.topology == "cluster"
    service = resource("Service", "redis-cluster")
    assert cluster.startup_nodes == (
        ("redis-cluster.novacron.svc", service["spec"]["ports"][0]["port"]),
    )
    for url in urls.values():
        assert "@" not in url  # no password in a URL: it comes from the Secret


def test_app_gets_its_password_from_the_secret_and_is_scraped() -> None:
    app = resource("Deployment", "novacache-example")
    template = app["spec"]["template"]
    (main,) = template["spec"]["containers"]
    env = {e["name"]: e for e in main["env"]}
    assert env["NOVACACHE_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "redis-auth",
        "key": "password",
    }
    assert env["NOVACACHE_REDIS_URL"]["valueFrom"]["configMapKeyRef"]["name"] == (
        "novacache-example"
    )
    assert template["metadata"]["labels"]["novacache.io/redis-client"] == "true"
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    ports = {p["containerPort"]: p["name"] for p in main["ports"]}
    assert int(annotations["prometheus.io/port"]) in ports
    for probe in ("livenessProbe", "readinessProbe"):
        assert main[probe]["httpGet"]["port"] in ports.values()


@pytest.mark.parametrize("name", ["redis-cluster", "redis"])
def test_redis_pods_are_scraped_through_the_exporter(name: str) -> None:
    template = resource("StatefulSet", name)["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    exporter = next(c for c in template["spec"]["containers"] if c["name"] == "exporter")
    assert annotations["prometheus.io/port"] == str(exporter["ports"][0]["containerPort"])
    assert annotations["prometheus.io/path"] == "/metrics"

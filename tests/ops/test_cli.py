"""The operator's CLI against a real ``novacache serve`` (a child process running uvicorn
on the tiers of a novacache.toml) and directly against the configured tiers: tables,
``--json``, and exit codes scripts can use."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import novacache as novacache_pkg
from manager._support import live
from novacache import config
from novacache.ops.admin import PROBLEMS, REFUSED, UNREACHABLE, USAGE
from tiers.redis_servers import Standalone

TOKEN = "cli-token-" + secrets.token_hex(12)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # The package the tests import (from src/ or installed), whatever the child's cwd.
    here = str(Path(novacache_pkg.__file__).parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([here, *filter(None, [env.get("PYTHONPATH")])])
    env.pop("NOVACACHE_CONFIG", None)
    env.pop("NOVACACHE_TOKEN", None)
    env.update(extra)
    return env


def novacache(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "novacache", *args],
        cwd=cwd,
        env=env or _env(NC_TOKEN=TOKEN),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def workdir(tmp_path: Path, redis_standalone: Standalone, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NC_TOKEN", TOKEN)  # for config.load in this process
    port = _free_port()
    prefix = f"cli-{secrets.token_hex(4)}:"
    (tmp_path / "novacache.toml").write_text(
        f"""
[tiers.redis]
url = "{redis_standalone.url}"
prefix = "{prefix}"
[tiers.sqlite]
path = "store.db"
[http]
port = {port}
token_env = "NC_TOKEN"
warmers = "site_warmers:warmers"
""",
        encoding="utf-8",
    )
    # The service's factory of domain caches (`python -m` puts the cwd on sys.path).
    (tmp_path / "site_warmers.py").write_text(WARMERS_MODULE, encoding="utf-8")
    return tmp_path


WARMERS_MODULE = """
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    loaded: int
    skipped: int
    failed: int
    seconds: float


class NodeWarmer:
    def __init__(self, manager):
        self.manager = manager

    async def warmup(self, scope, targets, *, parameters=None, progress=None):
        start = time.monotonic()
        for i, node in enumerate(targets):
            await self.manager.set(f"node:{node}", {"warm": True})
            if progress is not None:
                progress(i + 1, len(targets))
        return Result(len(targets), 0, 0, time.monotonic() - start)


def warmers(manager):
    return {"resource_allocation": NodeWarmer(manager)}
"""


@pytest.fixture
def server(workdir: Path) -> Iterator[str]:
    env = _env(NC_TOKEN=TOKEN)
    proc = subprocess.Popen(
        [sys.executable, "-m", "novacache", "serve", "--log-level", "warning"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = config.load(workdir / "novacache.toml").http.base_url
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read() if proc.stdout else ""
                raise RuntimeError(f"novacache serve did not start: {out}")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stdout.read() if proc.stdout else ""


def _manager(workdir: Path):  # type: ignore[no-untyped-def]
    return config.load(workdir / "novacache.toml").open_manager()


def test_stats_and_invalidate_through_the_server(workdir: Path, server: str) -> None:
    writer = _manager(workdir)
    try:
        writer.set("vm:1", 1)
        writer.set("vm:2", 2)
        run = novacache("stats", cwd=workdir)
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines()[0].split()[:3] == ["layer", "hits", "misses"]
        run = novacache("stats", "--json", cwd=workdir)
        assert run.returncode == 0
        assert set(json.loads(run.stdout)["layers"]) == {"local", "remote", "store"}

        run = novacache("invalidate", "vm:1", "--force", "--json", cwd=workdir)
        assert run.returncode == 0, run.stderr
        report = json.loads(run.stdout)
        assert report["dropped"]["remote"] == 1
        assert report["dropped"]["store"] == 1
        assert live(writer.remote.get("vm:1")) is None
        assert live(writer.store.get("vm:1")) is None

        run = novacache("invalidate", "vm:2", cwd=workdir)  # queued: 202
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("queued 1 items")
        deadline = time.monotonic() + 10
        while live(writer.remote.get("vm:2")) is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert live(writer.remote.get("vm:2")) is None

        run = novacache("invalidate", "--pattern", "*", cwd=workdir)
        assert run.returncode == REFUSED
        assert "force" in run.stderr
    finally:
        writer.close()


def test_health_metrics_and_warmup_through_the_server(workdir: Path, server: str) -> None:
    run = novacache("health", "--json", cwd=workdir)
    assert run.returncode == 0, run.stderr
    health = json.loads(run.stdout)
    assert health["status"] == "healthy"
    assert {"remote", "store"} <= set(health["layers"])
    run = novacache("health", cwd=workdir)
    assert run.stdout.startswith("status: healthy")
    assert "novacache_" in httpx.get(server + "/metrics").text

    run = novacache(
        "warmup", "resource_allocation", "--scope", "node", "--target", "n1", "--target",
        "n2", "--priority", "high", "--wait", "--json", cwd=workdir,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    job = json.loads(run.stdout)
    assert job["state"] == "done"
    assert job["result"]["loaded"] == 2
    assert job["progress"] == {"done": 2, "total": 2}
    writer = _manager(workdir)
    try:
        assert writer.get("node:n1") == {"warm": True}
    finally:
        writer.close()


def test_refusals_and_an_absent_server_have_their_exit_codes(workdir: Path, server: str) -> None:
    run = novacache(
        "invalidate", "k", env=_env(NC_TOKEN=TOKEN, NOVACACHE_TOKEN="x" * 20), cwd=workdir
    )
    assert run.returncode == REFUSED
    assert "401" in run.stderr
    run = novacache("warmup", "vm_metadata", cwd=workdir)  # the factory gave none for it
    assert run.returncode == REFUSED
    assert "no warmer for 'vm_metadata'" in run.stderr
    run = novacache("stats", "--url", f"http://127.0.0.1:{_free_port()}", cwd=workdir)
    assert run.returncode == UNREACHABLE
    assert "cannot reach" in run.stderr


def test_direct_commands_work_on_the_configured_tiers(workdir: Path) -> None:
    writer = _manager(workdir)
    try:
        writer.set("host:1", 1)
        writer.set("host:2", 2)
        run = novacache("health", "--direct", cwd=workdir)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("status: healthy")
        run = novacache("stats", "--direct", "--json", cwd=workdir)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["layers"]["store"]["entries"] == 2
        run = novacache("invalidate", "--direct", "--pattern", "host:*", cwd=workdir)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("invalidated 2 keys")
        assert live(writer.remote.get("host:1")) is None
        assert live(writer.store.get("host:2")) is None
    finally:
        writer.close()


def test_a_dead_tier_is_degraded_or_unhealthy(tmp_path: Path) -> None:
    (tmp_path / "novacache.toml").write_text(
        '[tiers.redis]\nurl = "redis://127.0.0.1:1/0?timeout=0.2&retries=0"\nbus = false\n'
        '[tiers.sqlite]\npath = "s.db"\n',
        encoding="utf-8",
    )
    run = novacache("health", "--direct", "--json", cwd=tmp_path)
    assert run.returncode == PROBLEMS
    data = json.loads(run.stdout)
    assert data["status"] == "degraded"
    assert data["layers"]["remote"]["status"] == "down"
    run = novacache("stats", "--direct", cwd=tmp_path)
    assert run.returncode == UNREACHABLE


def test_bad_configuration_and_usage_exit_2(tmp_path: Path) -> None:
    (tmp_path / "novacache.toml").write_text("[http]\nport = 'x'\n", encoding="utf-8")
    run = novacache("stats", cwd=tmp_path)
    assert run.returncode == USAGE
    assert "novacache.toml: http.port: must be an integer, not a string" in run.stderr
    (tmp_path / "novacache.toml").write_text("[http]\nport = 1\n", encoding="utf-8")
    run = novacache("serve", cwd=tmp_path)  # no token, not insecure
    assert run.returncode == USAGE
    assert "[http] has no token" in run.stderr
    run = novacache("invalidate", "--direct", cwd=tmp_path)
    assert run.returncode == USAGE
    assert "at least one KEY" in run.stderr
    run = novacache("warmup", "vm_metadata", "--direct", cwd=tmp_path)
    assert run.returncode == USAGE


def test_serve_refuses_a_warmers_factory_it_cannot_load(workdir: Path) -> None:
    config_file = workdir / "novacache.toml"
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(text.replace("site_warmers:warmers", "nowhere_mod:warmers"))
    run = novacache("serve", cwd=workdir)
    assert run.returncode == USAGE
    assert "http.warmers: cannot load 'nowhere_mod:warmers'" in run.stderr


def test_the_demo_takes_redis_from_the_configuration(
    tmp_path: Path, redis_standalone: Standalone, capsys: pytest.CaptureFixture[str]
) -> None:
    from novacache.ops.cli import main

    config_file = tmp_path / "novacache.toml"
    config_file.write_text(f'[tiers.redis]\nurl = "{redis_standalone.url}"\n', encoding="utf-8")
    plot = tmp_path / "p.png"
    argv = ["demo", "--quick", "--dir", str(tmp_path), "--plot", str(plot)]
    assert main([*argv, "--config", str(config_file)]) == 0
    assert "L1 + Redis + SQLite" in capsys.readouterr().out
    config_file.write_text("[tiers.redis]\nurl = 'http://x'\n", encoding="utf-8")
    assert main([*argv, "--config", str(config_file)]) == USAGE
    assert "tiers.redis.url: must be a redis://" in capsys.readouterr().err

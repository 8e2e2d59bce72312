"""The embedded default needs no Redis client: the domain caches (and the invalidation
engine under them) import and run where redis-py is not installed (a fresh clone's
README command 1 installs only the `bench` and `demo` extras)."""

from __future__ import annotations

from pathlib import Path

from _isolate import run_isolated


def test_the_domain_caches_run_without_redis_py(tmp_path: Path) -> None:
    result = run_isolated(
        f"""
        import sys

        class NoRedis:
            def find_spec(self, name, path=None, target=None):
                if name == "redis" or name.startswith("redis."):
                    raise ModuleNotFoundError(f"No module named {{name!r}}")
                return None

        sys.meta_path.insert(0, NoRedis())
        from novacache import novacron
        from novacache.manager import CacheManager
        from novacache.novacron import VMState

        class Source:
            def get_vm_state(self, vm_id):
                return VMState(vm_id, "running", "n1")

        manager = CacheManager.embedded({str(tmp_path / "c.db")!r}, codec=novacron.codec())
        cache = novacron.VMMetadataCache(manager, Source())
        assert cache.get_state("vm-1").status == "running"
        assert "redis" not in sys.modules
        manager.close()
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"

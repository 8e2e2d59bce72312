"""AsyncVMMetadataCache (2.1): VM states, metrics by time range and configurations.

The one hand-written source of ``../_sync/vm_metadata.py`` (``scripts/unasync.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..._concurrency import IS_ASYNC, AsyncMutex, AsyncWorker, async_sleep
from ...errors import ConfigurationError, SourceError
from ...invalidation import EmitReport
from ...manager import AsyncCacheManager
from .._warmkit import Scope, WarmupResult, check_request
from ..config import VMCacheConfig
from ..keys import KeyGenerator, check_id
from ..models import TimeRange, VMConfiguration, VMMetrics, VMState, VMStateChange
from ..sources import MonitorSource, VMSource
from .base import AsyncDomainCache

__all__ = ["STATE_CHANGED", "AsyncVMMetadataCache", "VMCacheConfig"]

#: The invalidation event of a VM state change (field ``vm_id``), after the namespace
#: (``cache.event(STATE_CHANGED)``: ``"novacron:v1:vm.state_changed"``).
STATE_CHANGED = "vm.state_changed"


class AsyncVMMetadataCache(AsyncDomainCache):
    """VM states, metrics and configurations through a manager.

    :param manager: an :class:`~novacache.manager.AsyncCacheManager` whose codec knows
        the models (``codec=novacache.novacron.codec()``).
    :param source: the VM manager (:class:`~novacache.novacron.sources.VMSource`).
    :param monitor: the monitoring system, for :meth:`get_metrics`.
    :param config: a :class:`VMCacheConfig`.

    A state change (:meth:`on_state_change`) is an event of the manager's invalidation
    engine (``novacron:v1:vm.state_changed``: the VM's state and every metrics entry of
    it, found through the engine's index), followed by a write of the new state.
    """

    source_name = "vm"

    def __init__(
        self,
        manager: AsyncCacheManager,
        source: VMSource,
        monitor: MonitorSource | None = None,
        config: VMCacheConfig | None = None,
        *,
        keys: KeyGenerator | None = None,
    ) -> None:
        super().__init__(manager, keys)
        self.source = source
        self.monitor = monitor
        self.config = config if config is not None else VMCacheConfig()
        if not isinstance(self.config, VMCacheConfig):
            raise ConfigurationError("config is a VMCacheConfig")
        k = self.keys
        self._rule(
            STATE_CHANGED,
            keys=[k.template("vm_state")],
            patterns=[k.template("vm_metrics")],
        )
        self._tracked: dict[str, None] = {}  # VMs read lately, oldest first
        self._lock = AsyncMutex()  # guards _tracked (threads share the synchronous cache)
        self._worker: AsyncWorker | None = None
        self._changes: dict[str, int] = {}  # vm_id -> number of its latest change here
        self._serial = 0
        if IS_ASYNC:
            self._settling: set[asyncio.Task[None]] = set()
        else:
            self._settling_threads: set[threading.Timer] = set()
        if self.config.enable_real_time_sync:
            if IS_ASYNC:
                with contextlib.suppress(RuntimeError):  # no running loop: start_sync() later
                    self.start_sync()
            else:
                self.start_sync()

    # -- reads ------------------------------------------------------------------------

    async def get_state(self, vm_id: str) -> VMState:
        """The state of ``vm_id`` (cached ``state_ttl``)."""
        key = self.keys.vm_state(vm_id)
        self._track(vm_id)

        async def load() -> VMState:
            return await self._call("get_vm_state", self.source.get_vm_state, vm_id)  # type: ignore[no-any-return]

        return await self._read_through(key, VMState, "get_vm_state", load, self.config.state_ttl)

    async def get_metrics(self, vm_id: str, time_range: TimeRange) -> VMMetrics:
        """The metrics of ``vm_id`` over ``time_range`` (cached ``metrics_ttl``)."""
        key = self.keys.vm_metrics(vm_id, time_range)
        monitor = self.monitor
        if monitor is None:
            raise ConfigurationError("get_metrics needs a monitor source (monitor=)")

        async def load() -> VMMetrics:
            return await self._call("get_vm_metrics", monitor.get_vm_metrics, vm_id, time_range)  # type: ignore[no-any-return]

        return await self._read_through(
            key, VMMetrics, "get_vm_metrics", load, self.config.metrics_ttl
        )

    async def get_configuration(self, vm_id: str) -> VMConfiguration:
        """The configuration of ``vm_id`` (cached ``config_ttl``)."""
        key = self.keys.vm_config(vm_id)

        async def load() -> VMConfiguration:
            return await self._call("get_vm_configuration", self.source.get_vm_configuration, vm_id)  # type: ignore[no-any-return]

        return await self._read_through(
            key, VMConfiguration, "get_vm_configuration", load, self.config.config_ttl
        )

    async def get_states(self, vm_ids: Iterable[str]) -> dict[str, VMState]:
        """``{vm_id: state}`` for ``vm_ids`` (VMs the source does not know are left out
        and counted as ``source_missing``).

        One ``get_many`` through the manager (one round trip per tier: L1, then one MGET
        for what L1 lacked, then one store query for what is still missing), then one
        source call (``get_vm_states``) for all the misses, at most ``batch_size`` ids per
        call, then one ``set_many`` of what it returned.
        """
        if isinstance(vm_ids, str):
            raise TypeError("vm_ids is an iterable of ids, not one str")
        ids = list(dict.fromkeys(vm_ids))
        keys = {vm_id: self.keys.vm_state(vm_id) for vm_id in ids}
        for vm_id in ids:
            self._track(vm_id)
        cached = await self.manager.get_many(list(keys.values()))
        out: dict[str, VMState] = {}
        missing: list[str] = []
        for vm_id, key in keys.items():
            value = cached.get(key)
            if isinstance(value, VMState):
                out[vm_id] = value
            else:
                if value is not None:
                    self.stats.add("wrong_type")
                missing.append(vm_id)
        if missing:
            loaded = await self._fetch_states(missing)
            await self._write_many(
                {keys[vm_id]: state for vm_id, state in loaded.items()}, self.config.state_ttl
            )
            out.update(loaded)
        self.stats.add("reads", len(out))
        return {vm_id: out[vm_id] for vm_id in ids if vm_id in out}

    async def _fetch_states(self, vm_ids: Sequence[str]) -> dict[str, VMState]:
        """The states of ``vm_ids`` from the source, ``batch_size`` ids per call."""
        out: dict[str, VMState] = {}
        size = self.config.batch_size
        for i in range(0, len(vm_ids), size):
            chunk = list(vm_ids[i : i + size])
            found = await self._call("get_vm_states", self.source.get_vm_states, chunk)
            if not isinstance(found, Mapping):
                self.stats.add("source_errors")
                raise SourceError(self.source_name, "get_vm_states", "did not answer a mapping")
            for vm_id in chunk:
                state = found.get(vm_id)
                if state is None:
                    self.stats.add("source_missing")
                    continue
                out[vm_id] = self._expect("get_vm_states", state, VMState, vm_id)
        return out

    # -- events -----------------------------------------------------------------------

    async def on_state_change(self, change: VMStateChange) -> EmitReport:
        """Invalidate what the change affects (the VM's state and metrics, in every
        tier and, with an invalidation bus, every process's L1), then cache the new
        state when the change carries one. Returns the engine's report."""
        if not isinstance(change, VMStateChange):
            raise TypeError("on_state_change takes a VMStateChange")
        vm_id = check_id("vm_id", change.vm_id)
        with self._lock:
            self._serial += 1
            serial = self._changes[vm_id] = self._serial
        report = await self._emit(STATE_CHANGED, vm_id=vm_id)
        new = change.new
        if new is not None:
            await self._write(self.keys.vm_state(vm_id), new, self.config.state_ttl)
            delay = self.config.settle
            if delay > 0:
                if IS_ASYNC:
                    task = asyncio.get_running_loop().create_task(
                        self._settle(vm_id, new, serial, delay)
                    )
                    self._settling.add(task)
                    task.add_done_callback(self._settling.discard)
                else:
                    timer = threading.Timer(delay, self._settle, (vm_id, new, serial, 0.0))
                    timer.daemon = True
                    self._settling_threads.add(timer)
                    timer.start()
        else:
            with self._lock:
                self._changes.pop(vm_id, None)
        return report

    async def _settle(self, vm_id: str, new: VMState, serial: int, delay: float) -> None:
        """Write ``new`` again (see ``VMCacheConfig.settle``) unless a newer change of
        the VM was handled since."""
        if delay:
            await async_sleep(delay)
        with self._lock:
            if self._changes.get(vm_id) != serial:
                return
            del self._changes[vm_id]
        if not IS_ASYNC:
            self._settling_threads.discard(threading.current_thread())
        await self._write(self.keys.vm_state(vm_id), new, self.config.state_ttl)

    # -- real-time sync ---------------------------------------------------------------

    def _track(self, vm_id: str) -> None:
        tracked = self._tracked
        with self._lock:
            tracked.pop(vm_id, None)
            tracked[vm_id] = None
            if len(tracked) > self.config.max_tracked:
                del tracked[next(iter(tracked))]

    async def sync_once(self) -> int:
        """Fetch the states of the VMs read lately (in batches) and handle every one
        that differs from the cached state as a state change; how many changed."""
        with self._lock:
            ids = list(self._tracked)
        if not ids:
            return 0
        keys = [self.keys.vm_state(vm_id) for vm_id in ids]
        cached = await self.manager.get_many(keys)
        fresh = await self._fetch_states(ids)
        changed = 0
        for vm_id, key in zip(ids, keys, strict=True):
            old = cached.get(key)
            new = fresh.get(vm_id)
            if old is None or old == new:
                continue
            await self.on_state_change(
                VMStateChange(vm_id, old if isinstance(old, VMState) else None, new, time.time())
            )
            changed += 1
        self.stats.add("sync_changes", changed)
        return changed

    def start_sync(self) -> None:
        """Start the real-time sync loop (asyncio: a task of the running loop; a cache
        built with ``enable_real_time_sync`` outside a running loop starts it here)."""
        if self._worker is not None:
            return
        self._worker = AsyncWorker(self._sync_loop, "novacron-vm-sync")
        try:
            self._worker.start()
        except RuntimeError:  # asyncio: no running loop
            self._worker = None
            raise

    async def _sync_loop(self) -> None:
        worker = self._worker
        assert worker is not None
        while worker.running:
            await worker.pause(self.config.sync_interval)
            if not worker.running:
                break
            try:
                await self.sync_once()
            except SourceError:
                pass  # counted in source_errors; the next round tries again

    async def close(self) -> None:
        """Stop the sync loop and the pending settle writes (the manager is the
        caller's to close)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            await worker.stop()
        if IS_ASYNC:
            pending = list(self._settling)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        else:
            for timer in list(self._settling_threads):
                timer.cancel()
            self._settling_threads.clear()

    # -- warm-up ----------------------------------------------------------------------

    async def warmup(
        self,
        scope: Scope,
        targets: Sequence[str],
        *,
        parameters: Mapping[str, Any] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> WarmupResult:
        """Load the states of the VMs on ``targets`` (scope ``"node"``) or of every VM
        (``"cluster"``); ``"all"`` loads their configurations too. Parameters:
        ``batch_size`` (ids per source call), ``force`` (reload what is cached)."""
        start = time.perf_counter()
        scope_, nodes, params = check_request(
            scope, targets, parameters, {"batch_size": int, "force": bool}
        )
        ids: list[str] = []
        if scope_ == "node":
            for node in nodes:
                ids += await self._list("list_vms", self.source.list_vms, node)
        else:
            ids = await self._list("list_vms", self.source.list_vms, None)
        ids = list(dict.fromkeys(check_id("vm_id", i) for i in ids))
        force = bool(params.get("force", False))
        size = int(params.get("batch_size", self.config.batch_size))
        with_config = scope_ == "all"
        total = len(ids) * (2 if with_config else 1)
        loaded = skipped = failed = done = 0
        for i in range(0, len(ids), size):
            chunk = ids[i : i + size]
            keys = {vm_id: self.keys.vm_state(vm_id) for vm_id in chunk}
            cached = {} if force else await self.manager.get_many(list(keys.values()))
            want = [v for v in chunk if not isinstance(cached.get(keys[v]), VMState)]
            skipped += len(chunk) - len(want)
            if want:
                try:
                    found = await self._fetch_states(want)
                except SourceError:
                    failed += len(want)
                else:
                    await self._write_many(
                        {keys[v]: s for v, s in found.items()}, self.config.state_ttl
                    )
                    loaded += len(found)
                    failed += len(want) - len(found)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        if with_config:
            for vm_id in ids:
                key = self.keys.vm_config(vm_id)
                if not force and isinstance(await self.manager.get(key), VMConfiguration):
                    skipped += 1
                else:
                    try:
                        value = await self._call(
                            "get_vm_configuration", self.source.get_vm_configuration, vm_id
                        )
                        value = self._expect("get_vm_configuration", value, VMConfiguration, key)
                    except SourceError:
                        failed += 1
                    else:
                        await self._write(key, value, self.config.config_ttl)
                        loaded += 1
                done += 1
                if progress is not None:
                    progress(done, total)
        return WarmupResult(loaded, skipped, failed, time.perf_counter() - start)

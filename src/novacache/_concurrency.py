"""The few primitives whose synchronous and asyncio forms differ by nature.

The manager and the tiers are written once, as asyncio code (``.../_async/*.py``), and
their synchronous halves are generated from it by ``scripts/unasync.py``, which renames
``AsyncX`` to ``X`` and ``async_x`` to ``x``. Each name below therefore comes in the two
forms the generated code and its source call: ``AsyncFlight`` / ``Flight``,
``async_sleep`` / ``sleep``, and so on. ``if IS_ASYNC: ... else: ...`` in a source keeps
the ``else`` branch (only) in the generated synchronous code.

Nothing here knows about caches: waiting, sleeping, running blocking code, a lock for
bookkeeping, a shared outcome, a background loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

__all__ = [
    "IS_ASYNC",
    "AsyncEvent",
    "AsyncFlight",
    "AsyncLock",
    "AsyncMutex",
    "AsyncWorker",
    "Event",
    "Flight",
    "Lock",
    "Mutex",
    "Worker",
    "async_call_side",
    "async_owner",
    "async_run_blocking",
    "async_sleep",
    "call_side",
    "owner",
    "run_blocking",
    "sleep",
]

T = TypeVar("T")

#: True in the asyncio sources; ``scripts/unasync.py`` resolves ``if IS_ASYNC:`` to its
#: ``else`` branch in the generated synchronous code.
IS_ASYNC = True


# -- waiting ---------------------------------------------------------------------------


async def async_sleep(seconds: float) -> None:
    """Pause the calling task."""
    await asyncio.sleep(seconds)


def sleep(seconds: float) -> None:
    """Pause the calling thread."""
    time.sleep(seconds)


async def async_run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking call in a worker thread, off the event loop."""
    return await asyncio.to_thread(fn, *args)


def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking call (in a synchronous caller it simply runs)."""
    return fn(*args)


async def async_call_side(method: Callable[..., Any], *args: Any) -> Any:
    """Call a method of a side index (tags, invalidation patterns): await an awaitable
    one (the Redis indexes over the asyncio Redis tier), run one whose object says it is
    ``blocking`` (the SQLite and PostgreSQL indexes) in a worker thread, call any other
    directly."""
    if getattr(getattr(method, "__self__", None), "blocking", False):
        return await asyncio.to_thread(method, *args)
    result = method(*args)
    if inspect.isawaitable(result):
        return await result
    return result


def call_side(method: Callable[..., Any], *args: Any) -> Any:
    """Call a method of a side index (in a synchronous caller it simply runs)."""
    return method(*args)


def async_owner() -> object:
    """Who is calling: the running task."""
    return asyncio.current_task()


def owner() -> object:
    """Who is calling: the running thread."""
    return threading.get_ident()


AsyncEvent = asyncio.Event
Event = threading.Event
#: A lock held across awaits (the asyncio form) or by a thread.
AsyncLock = asyncio.Lock
Lock = threading.Lock


class AsyncMutex:
    """Guards bookkeeping that never awaits: on one event loop nothing can interleave
    with it, so it locks nothing (the synchronous form is a :class:`threading.Lock`)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


Mutex = threading.Lock


# -- a shared outcome (single-flight) --------------------------------------------------


class AsyncFlight(Generic[T]):
    """The outcome of one call that other tasks wait for: a future of the loop."""

    __slots__ = ("future", "owner")

    def __init__(self, owner: object) -> None:
        self.owner = owner
        self.future: asyncio.Future[T] = asyncio.get_running_loop().create_future()

    async def wait(self) -> T:
        """The leader's value, or its exception raised here. A waiter that is cancelled
        does not cancel the shared outcome (``shield``)."""
        return await asyncio.shield(self.future)

    def succeed(self, value: T) -> None:
        self.future.set_result(value)

    def fail(self, exc: BaseException) -> None:
        """Share the leader's exception; a cancelled leader cancels its waiters."""
        if isinstance(exc, asyncio.CancelledError):
            self.future.cancel()
            return
        self.future.set_exception(exc)
        # The leader raises it too: mark it retrieved, so asyncio does not log it as
        # never retrieved when nobody was waiting.
        self.future.exception()

    def release(self) -> None:
        """Waiters wake when the outcome is set (the loop runs them later)."""


class Flight(Generic[T]):
    """The outcome of one call that other threads wait for."""

    __slots__ = ("done", "error", "owner", "value")

    def __init__(self, owner: object) -> None:
        self.owner = owner
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None

    def wait(self) -> T:
        """The leader's value, or its exception raised here (after :meth:`release`)."""
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]

    def succeed(self, value: T) -> None:
        self.value = value

    def fail(self, exc: BaseException) -> None:
        self.error = exc

    def release(self) -> None:
        """Wake the waiters (the outcome is set before)."""
        self.done.set()


# -- a background loop -----------------------------------------------------------------


class AsyncWorker:
    """Runs ``body()`` as a task of the running loop until :meth:`stop` cancels it.

    ``body`` loops while :attr:`running` and pauses with :meth:`pause`; cancellation
    ends it at its next ``await``, so :attr:`running` stays true.
    """

    __slots__ = ("_body", "_name", "_task")

    def __init__(self, body: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        self._body = body
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the task (call once the owner is fully set up)."""
        self._task = asyncio.get_running_loop().create_task(self._body(), name=self._name)

    @property
    def running(self) -> bool:
        return True

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def stop(self) -> None:
        """Cancel the task and wait for it to end; harmless to repeat."""
        task = self._task
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Worker:
    """Runs ``body()`` in a daemon thread until :meth:`stop`.

    ``body`` loops while :attr:`running` and pauses with :meth:`pause`, which returns
    early when the worker is stopped.
    """

    __slots__ = ("_body", "_name", "_stop", "_thread")

    def __init__(self, body: Callable[[], None], name: str) -> None:
        self._body = body
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (call once the owner is fully set up)."""
        self._thread = threading.Thread(target=self._body, name=self._name, daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return not self._stop.is_set()

    def pause(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def stop(self) -> None:
        """Stop the loop and wait (about a second at most) for the thread to end;
        harmless to repeat, and from inside the loop itself."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)

"""A real uvicorn serving an app built inside its own event loop (the asyncio manager and
its tiers belong to that loop), in a thread of the test process, on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvicorn

T = TypeVar("T")

# build() -> (the ASGI app, an async closer run after the server stopped)
Build = Callable[[], Awaitable[tuple[Any, Callable[[], Awaitable[None]]]]]


@dataclass
class Served:
    url: str
    loop: asyncio.AbstractEventLoop
    app: Any
    server: uvicorn.Server
    thread: threading.Thread = field(repr=False)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coro`` in the server's loop (where its manager lives); its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextlib.contextmanager
def serve(build: Build) -> Iterator[Served]:
    ready: dict[str, Any] = {}
    started = threading.Event()

    async def main() -> None:
        try:
            app, close = await build()
            config = uvicorn.Config(
                app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"
            )
            server = uvicorn.Server(config)
            ready.update(app=app, server=server, loop=asyncio.get_running_loop())
            task = asyncio.create_task(server.serve())
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped at start")
            port = server.servers[0].sockets[0].getsockname()[1]
            ready["url"] = f"http://127.0.0.1:{port}"
            started.set()
            try:
                await task
            finally:
                await close()
        except BaseException as exc:
            ready["error"] = exc
            started.set()
            raise

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    if not started.wait(60):
        raise RuntimeError("uvicorn did not start within 60 s")
    if "error" in ready:
        raise ready["error"]
    served = Served(ready["url"], ready["loop"], ready["app"], ready["server"], thread)
    try:
        yield served
    finally:
        served.server.should_exit = True
        thread.join(30)
        if thread.is_alive():  # pragma: no cover - a hung shutdown fails the test
            raise RuntimeError("uvicorn did not stop within 30 s")


def wait_for(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Poll ``check`` until it is true or ``seconds`` passed; whether it became true."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()

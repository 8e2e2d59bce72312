"""The drop-in reads what cachetools wrote, and cachetools reads what the drop-in wrote.

Every class, user subclasses and keys made with keyword arguments
(:mod:`ct_fidelity_app`) are pickled at every protocol by the real cachetools 8.0.2 in
a child process, and loaded by ``novacache.cachetools`` in another child where
cachetools cannot be imported (``sys.modules["cachetools"] = None``), through
:mod:`novacache.cachetools.compat`; then the other way. A loaded object must do what
the original did (:func:`ct_fidelity_app.observe_cache`: items, sizes, every order,
expiry times, lookups with the loader's own keys). The pickles are made at test time,
never committed. Also here: the private names public code imports, and signatures and
attributes as cachetools has them.
"""

from __future__ import annotations

import inspect
import json
import pickle
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ct_helpers import load_package

from _helpers import child_env
from novacache.cachetools import compat

nct = load_package("novacache.cachetools")  # with .keys and .func

IMPLEMENTATIONS = ("auto", "pure")

_BLOCK_CACHETOOLS = 'sys.modules["cachetools"] = None  # importing it now raises ImportError'

_BUILD = """
import base64, json, pickle, sys
{block}
import ct_fidelity_app as app

# Per object: what it does, and per protocol its pickle and what the pickle loaded by
# this same package does (the reference for the other package's load).
out = {{"caches": {{}}, "keys": {{}}}}
for name, make in app.CACHES.items():
    entry = out["caches"][name] = {{"observed": app.observe_cache(make), "pickles": {{}}}}
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        try:
            data = pickle.dumps(make(), proto)
        except Exception as exc:
            entry["pickles"][proto] = [False, type(exc).__name__, None]
        else:
            reloaded = app.observe_cache(lambda: pickle.loads(data))
            entry["pickles"][proto] = [True, base64.b64encode(data).decode(), reloaded]
for name, make in app.KEYS.items():
    key = make(app.ct)
    entry = out["keys"][name] = {{"observed": app.observe_key(name, key), "pickles": {{}}}}
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(key, proto)
        reloaded = app.observe_key(name, pickle.loads(data))
        entry["pickles"][proto] = [True, base64.b64encode(data).decode(), reloaded]
print(json.dumps(out))
"""

_LOAD = """
import base64, json, sys
{block}
from novacache.cachetools import compat
import ct_fidelity_app as app

built = json.loads(sys.stdin.read())
out = {{"caches": {{}}, "keys": {{}}}}
for kind in ("caches", "keys"):
    for name, entry in built[kind].items():
        seen = out[kind][name] = {{}}
        for proto, (ok, data, _) in entry["pickles"].items():
            if not ok:
                continue
            raw = base64.b64decode(data)
            load = lambda: compat.loads(raw, into={into!r})
            try:
                if kind == "caches":
                    seen[proto] = app.observe_cache(load)
                else:
                    seen[proto] = app.observe_key(name, load())
            except Exception as exc:
                seen[proto] = ["raised", repr(exc)]
print(json.dumps(out))
"""


def _run(code: str, *, package: str, impl: str = "auto", stdin: str = "") -> Any:
    env = child_env(CT_FIDELITY_PACKAGE=package, NOVACACHE_CACHETOOLS_IMPL=impl)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


def _build(package: str, impl: str = "auto") -> Any:
    block = _BLOCK_CACHETOOLS if package != "cachetools" else ""
    return _run(_BUILD.format(block=block), package=package, impl=impl)


def _load(built: Any, *, package: str, impl: str = "auto") -> Any:
    into = "novacache" if package != "cachetools" else "cachetools"
    block = _BLOCK_CACHETOOLS if package != "cachetools" else ""
    code = _LOAD.format(block=block, into=into)
    return _run(code, package=package, impl=impl, stdin=json.dumps(built))


@pytest.fixture(scope="module")
def by_cachetools() -> Any:
    """Everything ct_fidelity_app makes, pickled by the real cachetools 8.0.2."""
    return _build("cachetools")


def _compare(built: Any, loaded: Any) -> list[str]:
    """Where an object loaded by the other package does not do what the same pickle
    does loaded by the package that made it."""
    wrong = []
    for kind in ("caches", "keys"):
        for name, entry in built[kind].items():
            for proto, (ok, _, reloaded) in entry["pickles"].items():
                if ok and loaded[kind][name].get(proto) != reloaded:
                    wrong.append(
                        f"{kind} {name!r} protocol {proto}:\n"
                        f"  reloaded by its maker: {reloaded}\n"
                        f"  loaded by the other:   {loaded[kind][name].get(proto)}"
                    )
    return wrong


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_cachetools_pickles_load_whole_and_working(by_cachetools: Any, impl: str) -> None:
    loaded = _load(by_cachetools, package="novacache.cachetools", impl=impl)
    assert _compare(by_cachetools, loaded) == []
    # Every class was pickled, at every protocol it can be (TLRUCache's _Item has
    # __slots__ and no __getstate__: not below protocol 2, in cachetools either).
    refused = {
        (name, proto)
        for name, entry in by_cachetools["caches"].items()
        for proto, (ok, _, _) in entry["pickles"].items()
        if not ok
    }
    assert refused == {("TLRUCache", "0"), ("TLRUCache", "1")}


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_our_pickles_load_in_cachetools(by_cachetools: Any, impl: str) -> None:
    ours = _build("novacache.cachetools", impl)
    # Our objects do what cachetools' do, and pickle (and reload) as theirs do.
    for kind in ("caches", "keys"):
        for name, entry in by_cachetools[kind].items():
            assert ours[kind][name]["observed"] == entry["observed"], name
            assert {p: (ok, r) for p, (ok, _, r) in ours[kind][name]["pickles"].items()} == {
                p: (ok, r) for p, (ok, _, r) in entry["pickles"].items()
            }, name
    loaded = _load(ours, package="cachetools")
    assert _compare(ours, loaded) == []


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_our_pickles_load_in_the_other_implementation(impl: str) -> None:
    # Pickles name novacache.cachetools.<Class>, whichever implementation made them.
    other = "pure" if impl == "auto" else "auto"
    ours = _build("novacache.cachetools", impl)
    loaded = _load(ours, package="novacache.cachetools", impl=other)
    assert _compare(ours, loaded) == []


def test_install_loads_cachetools_shelves_with_plain_pickle(tmp_path: Path) -> None:
    """A shelve written with cachetools, opened unchanged after the switch."""
    path = str(tmp_path / "cache.shelf")
    # The reference: what cachetools reads back from its own shelve.
    write = f"""
    import json, shelve
    import ct_fidelity_app as app
    with shelve.open({path!r}) as db:
        for name, make in app.CACHES.items():
            db[name] = make()
        for name, make in app.KEYS.items():
            db["key:" + name] = make(app.ct)
    observed = {{}}
    with shelve.open({path!r}, "r") as db:
        for name in db:
            if name.startswith("key:"):
                observed[name] = app.observe_key(name[4:], db[name])
            else:
                observed[name] = app.observe_cache(lambda: db[name])
    print(json.dumps(observed))
    """
    read = f"""
    import json, shelve, sys
    {_BLOCK_CACHETOOLS}
    from novacache.cachetools import compat
    compat.install()
    import cachetools
    assert cachetools.__name__ == "novacache.cachetools"
    import ct_fidelity_app as app
    observed = {{}}
    with shelve.open({path!r}, "r") as db:
        for name in db:
            if name.startswith("key:"):
                observed[name] = app.observe_key(name[4:], db[name])
            else:
                observed[name] = app.observe_cache(lambda: db[name])
    print(json.dumps(observed))
    """
    written = _run(write, package="cachetools")
    assert _run(read, package="cachetools") == written


def test_install_refuses_when_the_real_cachetools_is_imported() -> None:
    code = """
    import cachetools
    from novacache.cachetools import compat
    try:
        compat.install()
    except RuntimeError as exc:
        print("refused:", exc)
    """
    env = child_env()
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("refused: the real cachetools is already imported")


# -- in one process, with both packages -----------------------------------------------


def test_keys_cross_pickles_equal_and_hash_equal() -> None:
    import cachetools.keys

    theirs = cachetools.keys.hashkey(1, "x", a=2, b=(3,))
    ours = nct.keys.hashkey(1, "x", a=2, b=(3,))
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        loaded = compat.loads(pickle.dumps(theirs, proto))
        assert loaded == ours
        assert hash(loaded) == hash(ours)
        back = compat.loads(pickle.dumps(ours, proto), into="cachetools")
        assert back == theirs
        assert hash(back) == hash(theirs)


def test_private_names_public_code_imports() -> None:
    import cachetools

    assert nct.keys._kwmark == (nct.keys._HashedTuple,)
    assert issubclass(nct.keys._HashedTuple, tuple)
    assert nct.keys.hashkey(1, a=2) == (1, nct.keys._HashedTuple, ("a", 2))
    assert nct.keys.hashkey(1, a=2)[1] is nct.keys._kwmark[0]
    assert issubclass(nct.TTLCache, nct._TimedCache)
    assert issubclass(nct.TLRUCache, nct._TimedCache)
    assert isinstance(nct.TTLCache(2, 1), nct._TimedCache)
    for owner, name in (
        ("_TimedCache", "_Timer"),
        ("TTLCache", "_Link"),
        ("LFUCache", "_Link"),
        ("TLRUCache", "_Item"),
    ):
        assert isinstance(getattr(getattr(cachetools, owner), name), type)
        assert isinstance(getattr(getattr(nct, owner), name), type), (owner, name)


def _params(obj: Any) -> Any:
    """A signature as (name, kind, default), a callable default by its name."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError) as exc:
        return type(exc).__name__
    return [
        (p.name, p.kind, getattr(p.default, "__qualname__", p.default))
        for p in signature.parameters.values()
    ]


def _submodules(package: ModuleType) -> list[ModuleType]:
    return [package, package.keys, package.func]


def test_signatures_match_cachetools() -> None:
    cachetools = load_package("cachetools")
    for theirs, ours in zip(_submodules(cachetools), _submodules(nct), strict=True):
        for name in theirs.__all__:
            assert _params(getattr(ours, name)) == _params(getattr(theirs, name)), name
    assert _params(nct.LRUCache) == [
        ("maxsize", inspect.Parameter.POSITIONAL_OR_KEYWORD, "_empty"),
        ("getsizeof", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
    ]


def _public(obj: Any) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


def _specimens(ct: ModuleType) -> dict[str, Any]:
    """One of each kind of object a user meets, made by ``ct``."""

    def f(x: int) -> int:
        return x

    class Owner:
        @ct.cachedmethod(lambda self: {})
        def method(self, x: int) -> int:
            return x

    made: dict[str, Any] = {
        "Cache": ct.Cache(3),
        "LRUCache": ct.LRUCache(3),
        "LRUCache-sized": ct.LRUCache(3, getsizeof=len),
        "FIFOCache": ct.FIFOCache(3),
        "LFUCache": ct.LFUCache(3),
        "RRCache": ct.RRCache(3),
        "TTLCache": ct.TTLCache(3, 1),
        "TTLCache-sized": ct.TTLCache(3, 1, getsizeof=len),
        "TLRUCache": ct.TLRUCache(3, lambda k, v, now: now + 1),
        "cached": ct.cached(ct.LRUCache(3))(f),
        "cached-info": ct.cached(ct.LRUCache(3), info=True)(f),
        "cached-ttl": ct.cached(ct.TTLCache(3, 1))(f),
        "cached-lock": ct.cached({}, lock=threading.Lock())(f),
        "cached-lock-info": ct.cached({}, lock=threading.Lock(), info=True)(f),
        "cachedmethod-unbound": Owner.method,
        "cachedmethod-bound": Owner().method,
        "func.lru_cache": ct.func.lru_cache(f),
        "func.ttl_cache": ct.func.ttl_cache(maxsize=None)(f),
    }
    for name in ("Cache", "LRUCache", "FIFOCache", "LFUCache", "RRCache", "TTLCache"):
        made[f"class {name}"] = getattr(ct, name)
    return made


def test_attributes_match_cachetools() -> None:
    cachetools = load_package("cachetools")
    theirs, ours = _specimens(cachetools), _specimens(nct)
    for name, obj in ours.items():
        assert _public(obj) == _public(theirs[name]), name
        # What dir() lists, hasattr() finds (and the other way round).
        assert [n for n in dir(obj) if not hasattr(obj, n)] == [], name
    assert not hasattr(ours["cached"], "cache_info")
    assert "cache_info" not in dir(ours["cached"])
    assert ours["cached-info"].cache_info().misses == 0

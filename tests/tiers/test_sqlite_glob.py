"""Redis glob patterns rendered as regular expressions and index ranges (``_glob``).

The reference is a direct port of Redis' ``stringmatchlen`` (util.c); hypothesis checks
that the rendered regex agrees with it on random patterns and strings.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacache.tiers._glob import compile_glob, literal_prefix, prefix_upper_bound
from novacache.tiers.sqlite import SQLiteTier


def redis_match(pattern: str, key: str) -> bool:
    """Whether Redis' SCAN MATCH matches ``key`` in a namespace, as the Redis tier sees it.

    Note that the namespace prefix matters: bare ``stringmatchlen`` never matches an empty
    string, but a tier's keys are stored as ``prefix + key`` and matched against
    ``prefix + pattern``, so ``*`` does match the empty key.
    """
    return _stringmatch("\x00" + pattern, "\x00" + key)


def _stringmatch(p: str, s: str) -> bool:
    """Redis' stringmatchlen (case-sensitive), over characters instead of bytes."""
    pi, si = 0, 0
    while pi < len(p) and si < len(s):
        c = p[pi]
        if c == "*":
            while pi + 1 < len(p) and p[pi + 1] == "*":
                pi += 1
            if pi + 1 == len(p):
                return True
            return any(_stringmatch(p[pi + 1 :], s[k:]) for k in range(si, len(s) + 1))
        if c == "?":
            si += 1
        elif c == "[":
            pi += 1
            negate = pi < len(p) and p[pi] == "^"
            if negate:
                pi += 1
            match = False
            while True:
                if pi < len(p) and p[pi] == "\\" and pi + 1 < len(p):
                    pi += 1
                    match = match or p[pi] == s[si]
                elif pi < len(p) and p[pi] == "]":
                    break
                elif pi >= len(p):
                    pi -= 1
                    break
                elif pi + 2 < len(p) and p[pi + 1] == "-":
                    lo, hi = sorted((p[pi], p[pi + 2]))
                    pi += 2
                    match = match or lo <= s[si] <= hi
                else:
                    match = match or p[pi] == s[si]
                pi += 1
            if negate:
                match = not match
            if not match:
                return False
            si += 1
        else:
            if c == "\\" and pi + 1 < len(p):
                pi += 1
                c = p[pi]
            if c != s[si]:
                return False
            si += 1
        pi += 1
        if si == len(s):
            while pi < len(p) and p[pi] == "*":
                pi += 1
            break
    return pi == len(p) and si == len(s)


ALPHABET = "ab*?[]^-\\:xé"


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [
        ("user:?", ["user:1"], ["user:10", "user:"]),
        ("user:*", ["user:", "user:10"], ["use"]),
        ("user\\*star", ["user*star"], ["userXstar"]),
        ("u\\[x\\]", ["u[x]"], ["ux"]),
        ("[a-c]x", ["ax", "cx"], ["dx"]),
        ("[c-a]x", ["bx"], ["dx"]),
        ("[^a-c]x", ["dx"], ["bx"]),
        ("[]", [], ["", "a"]),
        ("[^]", ["a", "]"], [""]),
        ("a\\", ["a\\"], ["a"]),
        ("*", ["", "any\nthing"], []),
        ("x[ab", ["xa", "xb"], ["x[ab"]),
    ],
)
def test_known_patterns(pattern: str, yes: list[str], no: list[str]) -> None:
    regex = compile_glob(pattern)
    for s in yes:
        assert regex.match(s), (pattern, s)
        assert redis_match(pattern, s), (pattern, s)
    for s in no:
        assert not regex.match(s), (pattern, s)
        assert not redis_match(pattern, s), (pattern, s)


@settings(max_examples=400, deadline=None)
@given(st.text(ALPHABET, max_size=8), st.text(ALPHABET, max_size=8))
def test_regex_agrees_with_redis(pattern: str, s: str) -> None:
    assert bool(compile_glob(pattern).match(s)) == redis_match(pattern, s)


@settings(max_examples=300, deadline=None)
@given(st.text(ALPHABET, max_size=8), st.text(ALPHABET, max_size=8))
def test_every_match_lies_in_the_prefix_range(pattern: str, s: str) -> None:
    if compile_glob(pattern).match(s):
        prefix = literal_prefix(pattern)
        upper = prefix_upper_bound(prefix)
        assert s >= prefix
        assert upper is None or s < upper


def test_upper_bound_edges() -> None:
    assert prefix_upper_bound("") is None
    assert prefix_upper_bound("ab") == "ac"
    assert prefix_upper_bound("a\U0010ffff") == "b"
    assert prefix_upper_bound("\ud7ff") == "\ue000"
    assert prefix_upper_bound("\U0010ffff") is None


SCAN_KEYS = [
    "", "a", "ab", "a*b", "a?b", "a[b]", "a\\b", "a]b", "a^b", "a-b", "b", "ba", "é", "éa",
    "a\nb", "x:1", "x:10", "x:2", "\U0001f600", "a\U0001f600", "ab*",
]  # fmt: skip


def random_patterns(n: int, seed: int = 6) -> list[str]:
    """Seeded random patterns over the glob metacharacters (the same on every run)."""
    rng = random.Random(seed)
    alphabet = "ab*?[]^-\\:xé\U0001f600"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(n)]


def expected_scan(pattern: str) -> list[str]:
    return sorted(k for k in SCAN_KEYS if redis_match(pattern, k))


def test_sqlite_scan_agrees_with_redis(tmp_path: Path) -> None:
    with SQLiteTier(tmp_path / "store.db") as tier:
        tier.set_many(dict.fromkeys(SCAN_KEYS, b"."))
        for pattern in random_patterns(300):
            assert sorted(tier.scan(pattern)) == expected_scan(pattern), pattern

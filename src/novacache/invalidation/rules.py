"""Event rules, key and pattern templates, TTL rules and the strategy protocol (no I/O).

A template is a key or a glob pattern with ``{field}`` placeholders, filled from an
event's fields: ``"vm:{vm_id}:state"``, ``"vm:{vm_id}:metrics:*"``. ``{{`` and ``}}`` stand
for literal braces (a Redis Cluster hash tag: ``"{{vm}}:{vm_id}"``).

Patterns are globs with ``*`` (any run of characters, none included) and ``?`` (one
character); ``[``, ``]`` and ``\\`` are refused (the index and the SCAN fallback must mean
the same thing). In a pattern, a placeholder must be followed by a literal character, or
end the pattern: its value may not contain that character. So every key matches each
pattern template in at most one way, which is what lets the engine index a key at write
time under the exact pattern an event will name (see :mod:`novacache.invalidation`).
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigurationError, EventFieldError, MissingField

__all__ = [
    "EventRules",
    "InvalidationStrategy",
    "Rule",
    "TTLRules",
    "Targets",
    "Template",
    "escape_glob",
]

_GLOB = "*?"
_REFUSED = "[]\\"


def escape_glob(text: str) -> str:
    """``text`` with the glob metacharacters escaped, so it matches only itself."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _glob_regex(literal: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in literal)


class Template:
    """A key or pattern with ``{field}`` placeholders (see the module docstring).

    :param text: the template.
    :param pattern: whether it is a glob pattern (``*``, ``?``) or a plain key.

    ``ConfigurationError`` for a template that cannot work: a positional or empty
    placeholder, a format spec or conversion (``{x!r}``, ``{x:3}``), an attribute or
    index (``{vm.id}``), and in a pattern a refused metacharacter or a placeholder not
    followed by a literal character.
    """

    __slots__ = ("_parts", "_regex", "fields", "pattern", "prefix", "text")

    def __init__(self, text: str, *, pattern: bool) -> None:
        if not isinstance(text, str) or not text:
            raise ConfigurationError(f"a key or pattern template is a non-empty str, not {text!r}")
        self.text = text
        self.pattern = pattern
        parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ConfigurationError(f"template {text!r}: {exc}") from None
        for literal, name, spec, conversion in parsed:
            if name is not None:
                if not name.isidentifier():
                    raise ConfigurationError(
                        f"template {text!r}: placeholder {{{name}}} must be a field name"
                    )
                if spec or conversion:
                    raise ConfigurationError(
                        f"template {text!r}: placeholder {{{name}}} takes no format spec"
                    )
            if pattern and any(c in _REFUSED for c in literal):
                raise ConfigurationError(
                    f"pattern {text!r}: only * and ? are glob metacharacters here"
                )
            parts.append((literal, name))
        self._parts = tuple(parts)
        self.fields = tuple(dict.fromkeys(n for _, n in parts if n is not None))
        self.prefix = ""  # the literal text before the first placeholder or wildcard
        for literal, name in parts:
            head = re.split(r"[*?]", literal)[0] if pattern else literal
            self.prefix += head
            if name is not None or head != literal:
                break
        self._regex: re.Pattern[str] | None = self._compile() if pattern else None

    def _compile(self) -> re.Pattern[str]:
        """The regex a key must fully match to fall under one instance of this pattern;
        each placeholder is a named group of one or more characters other than the
        literal character that follows it."""
        out: list[str] = []
        seen: set[str] = set()
        parts = self._parts
        for i, (literal, name) in enumerate(parts):
            out.append(_glob_regex(literal))
            if name is None:
                continue
            following = parts[i + 1][0] if i + 1 < len(parts) else ""
            if i + 1 < len(parts) and not following:
                raise ConfigurationError(
                    f"pattern {self.text!r}: a placeholder must be followed by literal text"
                )
            stop = following[:1]
            if stop and stop in _GLOB:
                raise ConfigurationError(
                    f"pattern {self.text!r}: a placeholder must be followed by a literal"
                    " character, not a wildcard"
                )
            if name in seen:
                out.append(f"(?P={name})")
                continue
            seen.add(name)
            body = f"[^{re.escape(stop)}]+" if stop else ".+"
            out.append(f"(?P<{name}>{body})")
        return re.compile("".join(out), re.DOTALL)

    def _value(self, event: str, name: str, fields: Mapping[str, Any]) -> str:
        if name not in fields:
            raise MissingField(event, name, self.text)
        value = fields[name]
        if value is None or isinstance(value, bool):
            raise EventFieldError(event, name, self.text, f"{value!r} is not a value")
        text = value if isinstance(value, str) else str(value)
        if not text:
            raise EventFieldError(event, name, self.text, "an empty value")
        return text

    def fill(self, event: str, fields: Mapping[str, Any]) -> str:
        """The key, or the pattern instance, this template names for ``fields``.

        A pattern's values are escaped (a value ``*`` matches only ``*``). Raises
        :class:`~novacache.errors.MissingField` for an absent field and
        :class:`~novacache.errors.EventFieldError` for a value that cannot fill it.
        """
        out: list[str] = []
        parts = self._parts
        for i, (literal, name) in enumerate(parts):
            out.append(literal)
            if name is None:
                continue
            text = self._value(event, name, fields)
            if self.pattern:
                stop = parts[i + 1][0][:1] if i + 1 < len(parts) else ""
                if stop and stop in text:
                    raise EventFieldError(event, name, self.text, f"the value holds {stop!r}")
                text = escape_glob(text)
            out.append(text)
        return "".join(out)

    def glob(self) -> str:
        """The pattern with every placeholder as ``*``: the keys of every instance (what
        a SCAN looks for; e.g. for ``engine.backfill``)."""
        return "".join(literal + ("*" if name is not None else "") for literal, name in self._parts)

    def instance(self, key: str) -> str | None:
        """The instance of this pattern that ``key`` falls under (what :meth:`fill`
        returns for the fields read back from ``key``), or ``None``."""
        regex = self._regex
        if regex is None or not key.startswith(self.prefix):
            return None
        found = regex.fullmatch(key)
        if found is None:
            return None
        out: list[str] = []
        for literal, name in self._parts:
            out.append(literal)
            if name is not None:
                out.append(escape_glob(found.group(name)))
        return "".join(out)

    def __repr__(self) -> str:
        return f"Template({self.text!r}, pattern={self.pattern})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Template)
            and other.text == self.text
            and other.pattern == self.pattern
        )

    def __hash__(self) -> int:
        return hash((self.text, self.pattern))


@dataclass
class Targets:
    """What an event invalidates, as named by the strategies: keys, pattern instances
    (registered patterns, found through the indexes), tags, and ad-hoc patterns nobody
    registered (found by a bounded SCAN). ``by`` records, for counting, which strategy
    or rule named something."""

    keys: set[str] = field(default_factory=set)
    patterns: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)
    scans: set[str] = field(default_factory=set)
    by: list[str] = field(default_factory=list)

    def update(self, other: Targets) -> None:
        self.keys |= other.keys
        self.patterns |= other.patterns
        self.tags |= other.tags
        self.scans |= other.scans
        self.by += other.by

    def __bool__(self) -> bool:
        return bool(self.keys or self.patterns or self.tags or self.scans)


@runtime_checkable
class InvalidationStrategy(Protocol):
    """A strategy turns an event into :class:`Targets` (no I/O; the engine resolves
    them). ``name`` labels its counts; ``patterns()`` lists the pattern templates it may
    name, which the engine indexes at write time (a pattern it names without listing it
    is resolved by the bounded SCAN fallback, and counted as such)."""

    name: str

    def targets(self, event: str, fields: Mapping[str, Any]) -> Targets | None: ...

    def patterns(self) -> Iterable[Template]: ...


@dataclass(frozen=True)
class Rule:
    """One event rule: what ``event`` invalidates. Build it with
    :meth:`EventRules.rule` (or ``engine.rule``)."""

    event: str
    name: str
    keys: tuple[Template, ...]
    patterns: tuple[Template, ...]
    tags: tuple[Template, ...]

    def targets(self, fields: Mapping[str, Any]) -> Targets:
        """The rule filled from ``fields`` (every placeholder is checked first)."""
        out = Targets(by=[self.name])
        out.keys.update(t.fill(self.event, fields) for t in self.keys)
        out.patterns.update(t.fill(self.event, fields) for t in self.patterns)
        out.tags.update(t.fill(self.event, fields) for t in self.tags)
        return out


def _texts(what: str, items: Iterable[str]) -> list[str]:
    if isinstance(items, str):
        raise TypeError(f"{what} is a list of str, not one str")
    return list(items)


class EventRules:
    """The event-driven strategy: rules from an event name to keys, patterns and tags."""

    name = "rules"

    def __init__(self) -> None:
        self._rules: dict[str, list[Rule]] = {}

    def rule(
        self,
        event: str,
        keys: Iterable[str] = (),
        patterns: Iterable[str] = (),
        tags: Iterable[str] = (),
        *,
        name: str | None = None,
    ) -> Rule:
        """Add a rule: ``event`` invalidates ``keys``, the keys matching ``patterns`` and
        the keys carrying ``tags`` (each a template). Returns the rule; its counts are
        kept under ``name`` (default: ``"<event>#<n>"``)."""
        if not isinstance(event, str) or not event:
            raise ConfigurationError(f"an event name is a non-empty str, not {event!r}")
        rules = self._rules.setdefault(event, [])
        built = Rule(
            event,
            name if name is not None else f"{event}#{len(rules) + 1}",
            tuple(Template(k, pattern=False) for k in _texts("keys", keys)),
            tuple(Template(p, pattern=True) for p in _texts("patterns", patterns)),
            tuple(Template(t, pattern=False) for t in _texts("tags", tags)),
        )
        if not (built.keys or built.patterns or built.tags):
            raise ConfigurationError(f"rule for {event!r} names no keys, patterns or tags")
        rules.append(built)
        return built

    def rules(self, event: str | None = None) -> list[Rule]:
        """The rules of ``event``, or every rule."""
        if event is not None:
            return list(self._rules.get(event, ()))
        return [r for rules in self._rules.values() for r in rules]

    def targets(self, event: str, fields: Mapping[str, Any]) -> Targets | None:
        rules = self._rules.get(event)
        if not rules:
            return None
        out = Targets()
        for rule in rules:
            out.update(rule.targets(fields))
        return out

    def patterns(self) -> Iterable[Template]:
        return [p for rules in self._rules.values() for rule in rules for p in rule.patterns]


class TTLRules:
    """Default TTLs by key prefix or pattern, for writes that give no TTL: the one place
    where they are listed (``engine.ttl_rules``; ``describe()`` prints them).

    ``{"vm:": 300, "vm:*:metrics:*": 15, "session:": math.inf}``: a key ending in ``*``
    or holding ``*`` / ``?`` is a glob pattern, anything else a prefix. The most specific
    rule wins: a pattern before a prefix (patterns in the order given), then the longest
    prefix. ``math.inf`` means no expiry; a key no rule names gets the manager's
    ``default_ttl``.
    """

    def __init__(self, rules: Mapping[str, float] | None = None) -> None:
        self._prefixes: list[tuple[str, float]] = []
        self._patterns: list[tuple[str, re.Pattern[str], float]] = []
        for text, ttl in (rules or {}).items():
            self.add(text, ttl)

    def add(self, text: str, ttl: float) -> None:
        """Add a rule (see the class docstring)."""
        if not isinstance(text, str) or not text:
            raise ConfigurationError(f"a TTL rule names a non-empty prefix, not {text!r}")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise ConfigurationError(f"TTL rule {text!r}: ttl must be a real > 0, not {ttl!r}")
        if any(c in _REFUSED for c in text):
            raise ConfigurationError(f"TTL rule {text!r}: only * and ? are metacharacters")
        if any(c in _GLOB for c in text[:-1]) or (text.endswith("?")):
            self._patterns.append((text, re.compile(_glob_regex(text), re.DOTALL), float(ttl)))
        else:
            self._prefixes.append((text.rstrip("*"), float(ttl)))
            self._prefixes.sort(key=lambda p: -len(p[0]))

    def __bool__(self) -> bool:
        return bool(self._prefixes or self._patterns)

    def ttl_for(self, key: str) -> float | None:
        """The TTL of the most specific rule for ``key`` (``math.inf``: no expiry), or
        ``None`` when no rule names it."""
        for _, regex, ttl in self._patterns:
            if regex.fullmatch(key):
                return ttl
        for prefix, ttl in self._prefixes:
            if key.startswith(prefix):
                return ttl
        return None

    def describe(self) -> list[tuple[str, float]]:
        """Every rule as ``(prefix or pattern, ttl)``, in the order they are tried."""
        return [(t, ttl) for t, _, ttl in self._patterns] + [
            (p + "*" if p else "*", ttl) for p, ttl in self._prefixes
        ]

    def __repr__(self) -> str:
        shown = ", ".join(f"{t!r}: {'inf' if math.isinf(s) else s}" for t, s in self.describe())
        return f"TTLRules({{{shown}}})"

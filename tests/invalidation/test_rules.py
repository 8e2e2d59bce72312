"""Templates, event rules and TTL rules (no I/O)."""

from __future__ import annotations

import math
import pickle

import pytest

from novacache.errors import ConfigurationError, EventFieldError, MissingField
from novacache.invalidation import EventRules, Template, TTLRules


def test_a_key_template_is_filled_from_the_fields() -> None:
    t = Template("vm:{vm_id}:state", pattern=False)
    assert t.fields == ("vm_id",)
    assert t.fill("e", {"vm_id": 42}) == "vm:42:state"
    assert t.fill("e", {"vm_id": "a*b"}) == "vm:a*b:state"  # a key is not a glob


def test_a_missing_or_unusable_field_is_a_typed_error() -> None:
    t = Template("node:{src}", pattern=False)
    with pytest.raises(MissingField) as info:
        t.fill("vm.migrated", {"dst": "n2"})
    assert (info.value.event, info.value.field, info.value.template) == (
        "vm.migrated",
        "src",
        "node:{src}",
    )
    assert isinstance(info.value, ValueError)
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is MissingField
    assert again.field == "src"
    for bad in (None, "", True):
        with pytest.raises(EventFieldError):
            t.fill("e", {"src": bad})


def test_a_pattern_value_is_escaped_and_may_not_hold_its_stop_character() -> None:
    p = Template("vm:{vm_id}:metrics:*", pattern=True)
    assert p.fill("e", {"vm_id": 7}) == "vm:7:metrics:*"
    assert p.fill("e", {"vm_id": "a*"}) == "vm:a\\*:metrics:*"
    with pytest.raises(EventFieldError, match="holds ':'"):
        p.fill("e", {"vm_id": "a:b"})  # would name the keys of other VMs


def test_a_key_falls_under_exactly_the_instance_an_event_fills() -> None:
    p = Template("vm:{vm_id}:metrics:*", pattern=True)
    assert p.prefix == "vm:"
    assert p.glob() == "vm:*:metrics:*"
    assert p.instance("vm:7:metrics:cpu") == p.fill("e", {"vm_id": 7})
    assert p.instance("vm:7:metrics:") == "vm:7:metrics:*"
    assert p.instance("vm:a*:metrics:x") == p.fill("e", {"vm_id": "a*"})
    for other in ("vm:7:state", "vm:7:8:metrics:x", "vm::metrics:x", "node:7:metrics:x"):
        assert p.instance(other) is None
    q = Template("{{t}}:{a}.?{b}", pattern=True)  # literal braces, two fields, a ?
    assert q.instance("{t}:x.zy") == q.fill("e", {"a": "x", "b": "y"}) == "{t}:x.?y"
    assert q.instance("{t}:x.") is None
    end = Template("host:{name}", pattern=True)  # a placeholder may end the pattern
    assert end.instance("host:a:b") == "host:a:b"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "vm:{}:x",
        "vm:{0}",
        "vm:{a.b}",
        "vm:{a!r}",
        "vm:{a:3}",
        "vm:{a",
        "x[ab]",
        "x\\*",
        "vm:{a}*",
        "vm:{a}{b}",
        "vm:{a}?",
    ],
)
def test_a_template_that_cannot_work_is_refused(text: str) -> None:
    with pytest.raises(ConfigurationError):
        Template(text, pattern=True)


def test_rules_need_a_target_and_count_under_a_name() -> None:
    rules = EventRules()
    with pytest.raises(ConfigurationError):
        rules.rule("e")
    with pytest.raises(TypeError):
        rules.rule("e", keys="k:{x}")
    first = rules.rule("e", keys=["k:{x}"])
    second = rules.rule("e", patterns=["p:{x}:*"], tags=["t:{x}"], name="named")
    assert (first.name, second.name) == ("e#1", "named")
    found = rules.targets("e", {"x": 1})
    assert found is not None
    assert (found.keys, found.patterns, found.tags) == ({"k:1"}, {"p:1:*"}, {"t:1"})
    assert found.by == ["e#1", "named"]
    assert rules.targets("other", {}) is None


def test_ttl_rules_take_the_most_specific() -> None:
    rules = TTLRules({"vm:": 300, "vm:*:metrics:*": 15, "vm:1": 60, "session:": math.inf})
    assert rules.ttl_for("vm:1:metrics:cpu") == 15  # a pattern before any prefix
    assert rules.ttl_for("vm:1:state") == 60  # the longest prefix
    assert rules.ttl_for("vm:2:state") == 300
    assert rules.ttl_for("session:x") == math.inf
    assert rules.ttl_for("other") is None
    assert rules.describe()[0] == ("vm:*:metrics:*", 15)
    for bad in (0, -1, "5", True, float("nan")):
        with pytest.raises(ConfigurationError):
            TTLRules({"x": bad})  # type: ignore[dict-item]

"""`bpfglobals.frozen`: the value classes on `get`'s path behave as frozen dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import FrozenInstanceError as DataclassFrozen
from dataclasses import dataclass, field
from types import MappingProxyType

import pytest

from bpfglobals.frozen import FrozenInstanceError, frozen, replace
from bpfglobals.node.layout import Layout
from bpfglobals.node.status import AppliedStatus


@frozen
class Point:
    x: int
    y: int = 0
    tags: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class DPoint:
    x: int
    y: int = 0
    tags: Mapping[str, str] = field(default_factory=dict)  # ours: a read-only mapping


def test_construction_equality_hash_and_repr_match_a_frozen_dataclass() -> None:
    for args, kwargs in (((1,), {}), ((1, 2), {}), ((), {"x": 1, "y": 2}), ((1,), {"y": 3})):
        kwargs = {**kwargs, "tags": {"a": "b"}}
        ours, theirs = Point(*args, **kwargs), DPoint(*args, **kwargs)
        assert (ours.x, ours.y, dict(ours.tags)) == (theirs.x, theirs.y, dict(theirs.tags))
        assert repr(ours) == repr(theirs).replace("DPoint", "Point")
    assert Point(1, 2) == Point(x=1, y=2) and Point(1, 2) != Point(1, 3)
    assert hash(Layout("/r", "a")) == hash(Layout("/r", "a"))  # hashable fields: hashable
    assert len({Layout("/r", "a"), Layout("/r", "a"), Layout("/r", "b")}) == 2
    assert Point(1).tags == {} and Point(1).tags is Point(2).tags  # shared, and read-only
    assert Point(1) != DPoint(1)  # another class is never equal, as with dataclasses
    assert Point.__match_args__ == DPoint.__match_args__ == ("x", "y", "tags")
    match Point(4, 5):
        case Point(x, y):
            assert (x, y) == (4, 5)


def test_fields_cannot_be_assigned_or_deleted() -> None:
    p = Point(1)
    with pytest.raises(FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del p.y
    with pytest.raises(DataclassFrozen):  # the dataclass raises its own (both AttributeError)
        DPoint(1).x = 2  # type: ignore[misc]
    assert issubclass(FrozenInstanceError, AttributeError)


def test_bad_arguments_are_refused_as_a_dataclass_refuses_them() -> None:
    for args, kwargs in (((), {}), ((1, 2, {}, 4), {}), ((1,), {"x": 1}), ((1,), {"z": 1})):
        with pytest.raises(TypeError):
            Point(*args, **kwargs)
        with pytest.raises(TypeError):
            DPoint(*args, **kwargs)


def test_replace_changes_only_the_named_fields() -> None:
    p = Point(1, 2)
    assert replace(p, y=5) == Point(1, 5) and p == Point(1, 2)
    with pytest.raises(TypeError):
        replace(p, z=1)


def test_a_class_with_a_mutable_default_or_a_misordered_default_is_refused() -> None:
    with pytest.raises(TypeError, match="mutable default"):

        @frozen
        class Bad:
            items: list[int] = []

    with pytest.raises(TypeError, match="without a default follows"):

        @frozen
        class Misordered:
            a: int = 0
            b: int  # type: ignore[misc]


def test_applied_status_serialises_its_default_extra_as_an_empty_mapping() -> None:
    s = AppliedStatus("n", (), {}, {}, "h", "sha")
    assert s.extra == {} and s.to_dict()["name"] == "n" and "variant" not in s.to_dict()

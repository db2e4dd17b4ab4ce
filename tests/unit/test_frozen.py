"""`bpfglobals.frozen`: the value classes on the start-up paths of `get` and `load` behave as
the dataclasses they stand for (`@frozen` as frozen ones, `@mutable` as plain ones)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import FrozenInstanceError as DataclassFrozen
from dataclasses import dataclass, field
from types import MappingProxyType

import pytest

from bpfglobals.frozen import FrozenInstanceError, frozen, mutable, replace
from bpfglobals.frozen import field as value_field
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


def _box(decorate, make_field):
    """The same class body under our decorator and under dataclasses'."""

    class Box:
        name: str
        items: list[int] = make_field(default_factory=list)
        blob: bytes = make_field(repr=False, default=b"")
        note: str = "n"

    return decorate(Box)


Box = _box(mutable, value_field)
DBox = _box(dataclass, field)


def test_a_mutable_value_matches_a_plain_dataclass() -> None:
    for args, kwargs in (
        (("a",), {}),
        (("a", [1]), {}),
        (("a", [1], b"x", "m"), {}),
        ((), {"name": "a", "note": "m"}),
        (("a",), {"blob": b"y"}),
    ):
        ours, theirs = Box(*args, **kwargs), DBox(*args, **kwargs)
        assert (ours.name, ours.items, ours.blob, ours.note) == (
            theirs.name,
            theirs.items,
            theirs.blob,
            theirs.note,
        )
        assert repr(ours) == repr(theirs)  # repr=False: not shown
    a, b = Box("a"), Box("a")
    assert a.items is not b.items  # a fresh list per instance, from the factory
    a.items.append(1)
    a.note = "changed"  # assignable
    assert a != b and Box("a", [1], note="changed") == a
    assert Box.__hash__ is None and DBox.__hash__ is None  # eq without frozen: unhashable
    with pytest.raises(TypeError):
        hash(a)
    assert "items" not in Box.__dict__ and Box.blob == DBox.blob == b""  # as dataclasses
    assert replace(a, name="b") == Box("b", [1], note="changed")
    for bad_args, bad_kwargs in (((), {}), (("a",), {"name": "b"}), (("a",), {"zz": 1})):
        with pytest.raises(TypeError):
            Box(*bad_args, **bad_kwargs)
        with pytest.raises(TypeError):
            DBox(*bad_args, **bad_kwargs)


def test_a_field_with_both_a_default_and_a_factory_is_refused() -> None:
    with pytest.raises(ValueError, match="both default and default_factory"):
        value_field(default=1, default_factory=list)
    with pytest.raises(ValueError, match="both default and default_factory"):
        field(default=1, default_factory=list)


def test_the_elf_model_and_the_loader_results_are_built_without_dataclasses() -> None:
    """The classes `load` builds use these decorators (`dataclasses` costs its start-up)."""
    import dataclasses

    from bpfglobals.elf.btf import Btf
    from bpfglobals.elf.btf_ext import BtfExt, CoreRelo
    from bpfglobals.elf.model import MapSpec, ObjectSpec, ProgramSpec
    from bpfglobals.loader.loaded import LoadedObject

    for cls in (Btf, BtfExt, CoreRelo, MapSpec, ObjectSpec, ProgramSpec, LoadedObject):
        assert not dataclasses.is_dataclass(cls) and cls.__frozen_fields__, cls
    assert Btf().types == Btf().types and Btf().types is not Btf().types

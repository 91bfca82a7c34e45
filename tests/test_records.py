"""``engine/records.frozen`` makes what ``@dataclass(frozen=True)`` makes: each property is
checked on a ``frozen`` class and on the same class made by ``dataclasses``, side by side."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any, ClassVar, Optional

import pytest

from assume_provider.engine.model import TemporaryCredentials
from assume_provider.engine.records import frozen


def _point_class(decorate: Any) -> Any:
    class Point:
        """A value with a required field, defaults, a factory and a field left out."""

        x: int
        y: Optional[int] = None
        tags: tuple[str, ...] = ()
        notes: dict[str, str] = dataclasses.field(
            default_factory=dict, compare=False, hash=False, repr=False
        )

    Point.__qualname__ = "Point"
    return decorate(Point)


RECORD = _point_class(frozen)
DATACLASS = _point_class(dataclasses.dataclass(frozen=True))
BOTH = pytest.mark.parametrize("cls", [RECORD, DATACLASS], ids=["frozen", "dataclass"])


@BOTH
def test_arguments_defaults_and_factories(cls: Any) -> None:
    point = cls(1, tags=("a",))
    assert (point.x, point.y, point.tags, point.notes) == (1, None, ("a",), {})
    assert cls(1).notes is not cls(1).notes  # a new dict each time, as default_factory says
    assert cls(x=2, y=3).y == 3


@BOTH
@pytest.mark.parametrize(
    "args, kwargs",
    [((), {}), ((1, 2, (), {}, 5), {}), ((1,), {"x": 1}), ((1,), {"z": 1})],
    ids=["missing", "too-many", "twice", "unknown"],
)
def test_wrong_arguments_are_a_type_error(
    cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(TypeError):
        cls(*args, **kwargs)


@BOTH
def test_equality_and_hash_over_the_compared_fields(cls: Any) -> None:
    one, same = cls(1, 2, notes={"a": "b"}), cls(1, 2)
    assert one == same and hash(one) == hash(same)
    assert one != cls(1, 3) and one != cls(2, 2)
    assert len({one, same, cls(1, 3)}) == 2
    other_class = RECORD if cls is DATACLASS else DATACLASS
    assert one != other_class(1, 2)  # another class is never equal, even with equal fields
    assert one.__eq__(object()) is NotImplemented


@BOTH
def test_repr_shows_the_shown_fields(cls: Any) -> None:
    assert repr(cls(1, tags=("a",), notes={"s": "hidden"})) == "Point(x=1, y=None, tags=('a',))"


@BOTH
def test_assignment_and_deletion_are_refused(cls: Any) -> None:
    point = cls(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.new = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        del point.x
    assert point.x == 1


@BOTH
def test_the_dataclasses_functions_work(cls: Any) -> None:
    point = cls(1, 2)
    assert dataclasses.is_dataclass(point)
    assert [field.name for field in dataclasses.fields(point)] == ["x", "y", "tags", "notes"]
    assert dataclasses.replace(point, y=5) == cls(1, 5)
    assert dataclasses.asdict(point) == {"x": 1, "y": 2, "tags": (), "notes": {}}
    assert point.__match_args__ == ("x", "y", "tags", "notes")


@BOTH
def test_copies_and_pickles_are_equal(cls: Any) -> None:
    point = cls(1, 2, ("t",))
    assert copy.copy(point) == point and copy.deepcopy(point) == point
    globals()["Point"] = cls  # pickle finds a class by module and name
    try:
        assert pickle.loads(pickle.dumps(point)) == point
    finally:
        del globals()["Point"]


def test_a_method_the_class_defines_is_kept() -> None:
    credentials = TemporaryCredentials("AKIDEXAMPLE", "the-secret", "the-token", 5.0)
    assert "the-secret" not in repr(credentials) and "the-token" not in repr(credentials)
    assert repr(credentials) == "TemporaryCredentials(access_key_id='AKIDEXAMPLE', expiration=5.0)"


def test_own_eq_gets_the_fields_hash() -> None:
    @frozen
    class Named:
        name: str

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Named) and self.name.lower() == other.name.lower()

    assert Named("A") == Named("a")
    assert hash(Named("A")) == hash(Named("A"))  # hashable, as a frozen dataclass would be


def test_what_it_does_not_support_is_refused_at_the_class() -> None:
    with pytest.raises(TypeError, match="__post_init__"):

        @frozen
        class Checked:
            x: int

            def __post_init__(self) -> None:
                pass


@pytest.mark.parametrize(
    "decorate", [frozen, dataclasses.dataclass(frozen=True)], ids=["frozen", "dataclass"]
)
def test_class_statements_dataclasses_refuses_are_refused(decorate: Any) -> None:
    with pytest.raises(ValueError, match="mutable default"):

        class Mutable:
            items: list[str] = []  # noqa: RUF012 - the mistake under test

        decorate(Mutable)
    with pytest.raises(TypeError, match="follows default argument"):

        class Order:
            x: int = 0
            y: int

        decorate(Order)
    with pytest.raises(TypeError, match="no type annotation"):

        class Unannotated:
            x = dataclasses.field(default=0)

        decorate(Unannotated)


@BOTH
def test_class_attributes_are_the_defaults(cls: Any) -> None:
    assert (cls.y, cls.tags) == (None, ())
    assert not hasattr(cls, "x") and not hasattr(cls, "notes")  # no default: no attribute


def test_what_a_value_class_does_not_need_is_refused() -> None:
    class Base:
        x: int

    @frozen
    class Parent:
        x: int

    classes = []

    class Child(Parent):
        y: int

    classes.append(Child)

    class Shared:
        counter: ClassVar[int] = 0

    classes.append(Shared)

    class Hidden:
        x: int = dataclasses.field(default=0, init=False)

    classes.append(Hidden)

    class KeywordOnly:
        x: int = dataclasses.field(default=0, kw_only=True)

    classes.append(KeywordOnly)
    for cls in classes:
        with pytest.raises(TypeError, match="does not support"):
            frozen(cls)
    assert frozen(Base).__match_args__ == ("x",)


@BOTH
def test_the_fields_are_the_same_for_the_class_and_its_instances(cls: Any) -> None:
    by_class, by_instance = dataclasses.fields(cls), dataclasses.fields(cls(1))
    assert by_class == by_instance  # made once (at first use), then kept on the class
    notes = by_class[-1]
    assert (notes.compare, notes.hash, notes.repr) == (False, False, False)
    assert by_class[1].default is None and by_class[0].default is dataclasses.MISSING

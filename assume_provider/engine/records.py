"""``@frozen``: what ``@dataclass(frozen=True)`` makes, without the cost of making it.

``dataclasses`` writes each method it adds to a class (``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, ``__setattr__``, ``__delattr__``) as source text and compiles it with ``exec``
when the class statement runs: about 6 million CPU instructions per class on CPython 3.11.
Even asked for no method, its collection of the fields costs ~0.2 M per class and ~0.1 M per
field (two pattern matches per string annotation, looking for ``ClassVar`` and ``InitVar``).
The 15 value classes on the path of zero-code activation cost a short-lived process more that
way than everything else the package's import does together (``docs/performance.md``,
"Short-lived processes"). ``frozen`` collects the fields itself, as ``dataclasses.Field``
objects made by ``dataclasses.field`` and kept where ``dataclasses`` keeps them, so
``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass`` work as on any dataclass;
the methods are closures made here over those fields, so nothing is compiled. They behave as
the frozen dataclass's do: keyword or positional arguments with defaults and
``default_factory``; equality between instances of the same class over the fields compared; a
hash over the same fields; a repr of the fields shown; ``FrozenInstanceError`` on assignment
and deletion. A method the class defines itself (a repr that hides secrets) is kept, as
``dataclasses`` keeps it. What a value class here does not need is refused at the class
statement: inherited fields, ``ClassVar``/``InitVar`` annotations, ``init=False`` or
``kw_only`` fields, ``__post_init__``. Standard library only.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_options: Any) -> Callable[[Any], Any]:
        return lambda decorator: decorator


__all__ = ["frozen"]

_Class = TypeVar("_Class", bound=type)

_MISSING: Any = dataclasses.MISSING
# What marks a Field as a real field (not a ClassVar or an InitVar) for dataclasses.fields()
# and replace(): private to dataclasses, and the same from Python 3.7 to 3.14.
_REAL_FIELD = dataclasses._FIELD  # type: ignore[attr-defined]


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def frozen(cls: _Class) -> _Class:
    """A frozen dataclass made from ``cls`` (see the module)."""
    for unsupported in ("__setattr__", "__delattr__", "__post_init__"):
        if unsupported in cls.__dict__:
            raise TypeError(f"@frozen does not support {cls.__qualname__}.{unsupported}")
    fields = _collect_fields(cls)
    cls.__dataclass_fields__ = {field.name: field for field in fields}  # type: ignore[attr-defined]
    names = tuple(field.name for field in fields)
    if "__match_args__" not in cls.__dict__:
        setattr(cls, "__match_args__", names)  # noqa: B010 - mypy refuses the assignment
    if cls.__doc__ is None:
        cls.__doc__ = f"{cls.__name__}({', '.join(names)})"
    compared = tuple(field.name for field in fields if field.compare)
    hashed = tuple(
        field.name
        for field in fields
        if field.hash or (field.hash is None and field.compare)
    )
    shown = tuple(field.name for field in fields if field.repr)
    methods: dict[str, Any] = {
        "__init__": _init(cls.__qualname__, fields),
        "__repr__": _repr(shown),
        "__eq__": _eq(_values(compared)),
        "__hash__": _hash(_values(hashed)),
        "__setattr__": _refuse_assignment,
        "__delattr__": _refuse_deletion,
    }
    for name, method in methods.items():
        # Kept when the class has its own; ``__hash__`` is None when it defines only __eq__.
        if cls.__dict__.get(name) is None:
            setattr(cls, name, method)
    return cls


def _collect_fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    """The fields of ``cls``, in annotation order, as ``dataclasses`` collects them; the
    class attribute of a ``field(...)`` becomes its default (or goes), as there."""
    if any(hasattr(base, "__dataclass_fields__") for base in cls.__mro__[1:]):
        raise TypeError(f"@frozen does not support fields inherited by {cls.__qualname__}")
    annotations = inspect.get_annotations(cls)  # its own, not its bases'
    for name, value in cls.__dict__.items():
        if isinstance(value, dataclasses.Field) and name not in annotations:
            raise TypeError(f"{cls.__qualname__}.{name} is a field but has no type annotation")
    fields: list[dataclasses.Field[Any]] = []
    for name, annotation in annotations.items():
        if "ClassVar" in str(annotation) or "InitVar" in str(annotation):
            raise TypeError(f"@frozen does not support {cls.__qualname__}.{name}: {annotation}")
        value = cls.__dict__.get(name, _MISSING)
        field: dataclasses.Field[Any] = (
            value if isinstance(value, dataclasses.Field) else dataclasses.field(default=value)
        )
        if not field.init or field.kw_only is True:
            raise TypeError(f"@frozen does not support {cls.__qualname__}.{name}'s options")
        field.name = name
        field.type = annotation
        field._field_type = _REAL_FIELD  # type: ignore[attr-defined]
        field.kw_only = False
        if field.default is not _MISSING and type(field.default).__hash__ is None:
            raise ValueError(
                f"mutable default {type(field.default)} for field {name} is not allowed: "
                "use default_factory"
            )
        if value is field:  # the class attribute is the default, as for any other field
            if field.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, field.default)
        fields.append(field)
    has_default = False
    for field in fields:
        if field.default is not _MISSING or field.default_factory is not _MISSING:
            has_default = True
        elif has_default:
            raise TypeError(f"non-default argument {field.name!r} follows default argument")
    return tuple(fields)


def _values(names: tuple[str, ...]) -> Callable[[object], tuple[Any, ...]]:
    if not names:
        return lambda instance: ()
    if len(names) == 1:
        get_one = attrgetter(names[0])
        return lambda instance: (get_one(instance),)
    return attrgetter(*names)


def _init(qualname: str, fields: tuple[dataclasses.Field[Any], ...]) -> Callable[..., None]:
    names = tuple(field.name for field in fields)
    known = frozenset(names)
    defaults = {
        field.name: field.default
        for field in fields
        if field.default is not dataclasses.MISSING
    }
    factories = {
        field.name: field.default_factory
        for field in fields
        if field.default_factory is not dataclasses.MISSING
    }

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(
                f"{qualname}() takes {len(names)} positional arguments but {len(args)} were given"
            )
        given = dict(zip(names, args, strict=False))  # args may be fewer: defaults
        for name, value in kwargs.items():
            if name not in known:
                raise TypeError(f"{qualname}() got an unexpected keyword argument {name!r}")
            if name in given:
                raise TypeError(f"{qualname}() got multiple values for argument {name!r}")
            given[name] = value
        values = vars(self)
        for name in names:
            if name in given:
                values[name] = given[name]
            elif name in defaults:
                values[name] = defaults[name]
            elif name in factories:
                values[name] = factories[name]()
            else:
                raise TypeError(f"{qualname}() missing required argument: {name!r}")

    return __init__


def _repr(names: tuple[str, ...]) -> Callable[[Any], str]:
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__qualname__}({shown})"

    return __repr__


def _eq(values: Callable[[object], tuple[Any, ...]]) -> Callable[[Any, object], Any]:
    def __eq__(self: Any, other: object) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    return __eq__


def _hash(values: Callable[[object], tuple[Any, ...]]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(values(self))

    return __hash__


def _refuse_assignment(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _refuse_deletion(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

"""``@frozen``: what ``@dataclass(frozen=True)`` makes, without the cost of making it.

``dataclasses`` writes each method it adds to a class (``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, ``__setattr__``, ``__delattr__``) as source text and compiles it with ``exec``
when the class statement runs: about 6 million CPU instructions per class on CPython 3.11.
Even asked for no method, its processing of a class costs ~0.2 M instructions and ~0.1 M per
field. The 15 value classes on the path of zero-code activation cost a short-lived process
more that way than everything else the package's import does together (``docs/performance.md``,
"Short-lived processes"), and their objects count towards the garbage collector's thresholds.

So ``frozen`` keeps, per class, only what its methods read (``_Spec``: the field names, the
defaults and factories, which fields are compared, hashed and shown), and gives every class
the same six methods, which read it; nothing is compiled or made per class. They behave as the
frozen dataclass's do: keyword or positional arguments with defaults and ``default_factory``;
equality between instances of the same class over the fields compared; a hash over the same
fields; a repr of the fields shown; ``FrozenInstanceError`` on assignment and deletion. A
method the class defines itself (a repr that hides secrets) is kept, as ``dataclasses`` keeps
it. The ``dataclasses.Field`` objects that ``dataclasses.fields``, ``replace``, ``asdict`` and
``is_dataclass`` read are made at the first such call (``_LazyFields``): a process that never
asks does not pay for them. What a value class here does not need is refused at the class
statement: inherited fields, ``ClassVar``/``InitVar`` annotations, ``init=False`` or
``kw_only`` fields, ``__post_init__``. Standard library only.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Any

# Names for the type checker only (``TypeVar`` is made in Python code at run time).
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from typing_extensions import dataclass_transform

    _Class = TypeVar("_Class", bound=type)
else:

    def dataclass_transform(**_options: Any) -> Callable[[Any], Any]:
        return lambda decorator: decorator


__all__ = ["frozen"]

_MISSING: Any = dataclasses.MISSING
_NONE: dict[str, Any] = {}  # shared by the classes that have no default (never changed)


class _Spec:
    """What the methods of one frozen class read (``_spec`` on the class). A plain class: a
    ``NamedTuple`` would cost its ~0.6 M instructions (``namedtuple`` compiles its ``__new__``)."""

    __slots__ = ("compared", "defaults", "explicit", "factories", "hashed", "names", "shown")

    def __init__(
        self,
        names: tuple[str, ...],  # every field, in order: the arguments of __init__
        defaults: dict[str, Any],
        factories: dict[str, Any],  # name: default_factory
        compared: tuple[str, ...],  # __eq__'s fields
        hashed: tuple[str, ...],  # __hash__'s
        shown: tuple[str, ...],  # __repr__'s
        explicit: dict[str, dataclasses.Field[Any]],  # the fields given as field(...)
    ) -> None:
        self.names = names
        self.defaults = defaults
        self.factories = factories
        self.compared = compared
        self.hashed = hashed
        self.shown = shown
        self.explicit = explicit


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def frozen(cls: _Class) -> _Class:
    """A frozen dataclass made from ``cls`` (see the module)."""
    namespace = cls.__dict__
    for unsupported in ("__setattr__", "__delattr__", "__post_init__"):
        if unsupported in namespace:
            raise TypeError(f"@frozen does not support {cls.__qualname__}.{unsupported}")
    spec = _spec_of(cls)
    cls._spec = spec  # type: ignore[attr-defined]
    cls.__dataclass_fields__ = _LAZY_FIELDS  # type: ignore[attr-defined]
    cls.__dataclass_params__ = _PARAMS  # type: ignore[attr-defined]
    if "__match_args__" not in namespace:
        setattr(cls, "__match_args__", spec.names)  # noqa: B010 - mypy refuses the assignment
    if cls.__doc__ is None:
        cls.__doc__ = f"{cls.__name__}({', '.join(spec.names)})"
    for name, method in _METHODS.items():
        # Kept when the class has its own; ``__hash__`` is None when it defines only __eq__.
        if namespace.get(name) is None:
            setattr(cls, name, method)
    return cls


def _spec_of(cls: type) -> _Spec:
    """The fields of ``cls`` in annotation order, checked as ``dataclasses`` checks them; the
    class attribute of a ``field(...)`` becomes its default (or goes), as there.

    Run once per class statement on the import path of every short-lived process, so written
    for the common class (no ``field(...)``): one pass over the fields, no per-field copies.
    """
    namespace = cls.__dict__
    if hasattr(cls, "_spec") and any(hasattr(base, "_spec") for base in cls.__mro__[1:]):
        raise TypeError(f"@frozen does not support fields inherited by {cls.__qualname__}")
    # Its own annotations, not its bases' (what ``inspect.get_annotations`` returns for a
    # class, without its checks for other kinds of objects).
    annotations: dict[str, Any] = namespace.get("__annotations__", _NONE)
    explicit: dict[str, dataclasses.Field[Any]] = {
        name: value for name, value in namespace.items() if isinstance(value, dataclasses.Field)
    }
    for name in explicit:
        if name not in annotations:
            raise TypeError(f"{cls.__qualname__}.{name} is a field but has no type annotation")
    names = tuple(annotations)
    defaults: dict[str, Any] = {}
    a_default_came = False
    for name in names:
        annotation = str(annotations[name])
        if "ClassVar" in annotation or "InitVar" in annotation:
            raise TypeError(f"@frozen does not support {cls.__qualname__}.{name}: {annotation}")
        default = namespace.get(name, _MISSING)
        has_factory = False
        if name in explicit:
            field = default
            if not field.init or field.kw_only is True:
                raise TypeError(f"@frozen does not support {cls.__qualname__}.{name}'s options")
            default = field.default
            has_factory = field.default_factory is not _MISSING
            if default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, default)  # the class attribute is the default, as there
        if default is not _MISSING:
            if type(default).__hash__ is None:
                raise ValueError(
                    f"mutable default {type(default)} for field {name} is not allowed: "
                    "use default_factory"
                )
            defaults[name] = default
            a_default_came = True
        elif has_factory:
            a_default_came = True
        elif a_default_came:
            raise TypeError(f"non-default argument {name!r} follows default argument")
    if not explicit:  # every field is compared, hashed and shown; nothing made by a factory
        return _Spec(names, defaults or _NONE, _NONE, names, names, names, _NONE)
    factories = {
        name: field.default_factory
        for name, field in explicit.items()
        if field.default_factory is not _MISSING
    }

    def those(wanted: Callable[[dataclasses.Field[Any]], bool]) -> tuple[str, ...]:
        return tuple(name for name in names if name not in explicit or wanted(explicit[name]))

    return _Spec(
        names,
        defaults or _NONE,
        factories or _NONE,
        those(lambda field: field.compare),
        those(lambda field: bool(field.hash) or (field.hash is None and field.compare)),
        those(lambda field: field.repr),
        explicit,
    )


class _LazyFields:
    """``__dataclass_fields__`` of every frozen class, made at first use: the
    ``dataclasses.Field`` objects, kept on the class from then on. Two threads asking at
    once both get equal fields; the last one's are kept."""

    def __get__(self, instance: object, owner: type) -> dict[str, dataclasses.Field[Any]]:
        spec: _Spec = owner._spec  # type: ignore[attr-defined]
        annotations = inspect.get_annotations(owner)
        fields: dict[str, dataclasses.Field[Any]] = {}
        for name in spec.names:
            field: dataclasses.Field[Any] = spec.explicit.get(name) or dataclasses.field(
                default=spec.defaults.get(name, _MISSING)
            )
            field.name = name
            field.type = annotations[name]
            field.kw_only = False
            # What marks a real field (not a ClassVar or an InitVar) for fields() and
            # replace(): private to dataclasses, and the same from Python 3.7 to 3.14.
            field._field_type = dataclasses._FIELD  # type: ignore[attr-defined]
            fields[name] = field
        owner.__dataclass_fields__ = fields  # type: ignore[attr-defined]
        return fields


_LAZY_FIELDS = _LazyFields()


class _Params:
    """``__dataclass_params__`` of every frozen class: what the standard library reads of a
    class ``is_dataclass`` accepts (``pprint`` reads ``repr``; ``@dataclass`` on a subclass
    reads ``frozen``), as ``@dataclass(frozen=True)`` would set them. One shared object."""

    __slots__ = ()
    init = repr = eq = frozen = match_args = True
    order = unsafe_hash = kw_only = slots = weakref_slot = False

    def __repr__(self) -> str:
        return "_Params(init=True, repr=True, eq=True, order=False, frozen=True)"


_PARAMS = _Params()


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    spec: _Spec = self._spec
    names = spec.names
    if len(args) > len(names):
        raise TypeError(
            f"{type(self).__qualname__}() takes {len(names)} positional arguments but "
            f"{len(args)} were given"
        )
    given = dict(zip(names, args))  # noqa: B905 - args may be fewer: defaults
    for name, value in kwargs.items():
        if name not in names:
            raise TypeError(
                f"{type(self).__qualname__}() got an unexpected keyword argument {name!r}"
            )
        if name in given:
            raise TypeError(
                f"{type(self).__qualname__}() got multiple values for argument {name!r}"
            )
        given[name] = value
    if len(given) < len(names):
        for name in names[len(args) :]:
            if name in given:
                continue
            if name in spec.defaults:
                given[name] = spec.defaults[name]
            elif name in spec.factories:
                given[name] = spec.factories[name]()
            else:
                raise TypeError(
                    f"{type(self).__qualname__}() missing required argument: {name!r}"
                )
    vars(self).update(given)


def _repr(self: Any) -> str:
    values = vars(self)
    shown = ", ".join(f"{name}={values[name]!r}" for name in self._spec.shown)
    return f"{type(self).__qualname__}({shown})"


def _eq(self: Any, other: object) -> Any:
    compared: tuple[str, ...] = self._spec.compared
    if other.__class__ is not self.__class__:
        return NotImplemented
    mine, theirs = vars(self), vars(other)
    return tuple(mine[name] for name in compared) == tuple(theirs[name] for name in compared)


def _hash(self: Any) -> int:
    values = vars(self)
    return hash(tuple(values[name] for name in self._spec.hashed))


def _refuse_assignment(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _refuse_deletion(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


_METHODS: dict[str, Callable[..., Any]] = {
    "__init__": _init,
    "__repr__": _repr,
    "__eq__": _eq,
    "__hash__": _hash,
    "__setattr__": _refuse_assignment,
    "__delattr__": _refuse_deletion,
}

"""Declaring commands from methods: ``@command`` builds the subparser from the signature.

::

    class Cryostat(Server):
        @command
        def setpoint(
            self, kelvin: float, ramp: bool = False, mode: Literal["pid", "open"] = "pid"
        ) -> str:
            '''Set the temperature setpoint.

            :param kelvin: target temperature in kelvin
            :param ramp: ramp slowly instead of jumping
            '''
            ...
            return f"setpoint {kelvin} K"

``setpoint --kelvin 4.2 --ramp`` then calls ``setpoint(kelvin=4.2, ramp=True, mode='pid')``
and the returned text is the reply. The signature says what the options mean:

========================================  =================================================
annotation                                option
========================================  =================================================
``str``, ``int``, ``float``, ``Path``     one value of that type (no annotation: ``str``)
``bool``                                  ``--flag`` / ``--no-flag``; omitted: the default
``X | None``, ``Optional[X]``             as ``X``; omitted: the default, else ``None``
``Literal["a", "b"]``                     one of the listed values
``list[X]``                               one or more values of ``X`` (``--n 1 2 3``)
========================================  =================================================

A parameter without a default is a required option (except ``X | None``). Any other
annotation raises :class:`TypeError` when the class is defined, not when a command
arrives. The descriptions in the docstring's ``Parameters`` section (numpy style, or
``:param name:`` lines) become the options' help. Old-style commands added to
``self.sp`` work beside these.
"""

from __future__ import annotations

import argparse
import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "_lab_comm_command"

SCALAR_TYPES: tuple[type, ...] = (str, int, float, Path)
"""Annotations taken as one value of that type."""

RESERVED = frozenset({"func", "which"})
"""Names the dispatch stores in the namespace: no parameter may take them."""


@dataclass(frozen=True)
class OptionSpec:
    """One option of a declared command: what to pass to ``add_argument``."""

    dest: str
    """The parameter name."""
    flags: tuple[str, ...]
    """Option strings, e.g. ``('--kelvin',)``."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``add_argument`` (no ``help``: see :attr:`help`)."""
    help: str = ""
    """The option's help line."""


@dataclass(frozen=True)
class CommandSpec:
    """What ``@command`` learned from a method, checked when its class was defined."""

    word: str
    """The command word."""
    description: str
    """One line shown in the daemon's help."""
    options: tuple[OptionSpec, ...]
    """One per parameter, in signature order."""


def command(func: F | None = None, *, name: str | None = None, help: str | None = None) -> Any:
    """Mark a :class:`~lab_utils.socket_comm.Server` method as a command.

    The options are derived from the signature at once, so an annotation that cannot be
    turned into an option fails while the class is being defined.

    Parameters
    ----------
    func : callable
        The method (when used as ``@command`` without arguments).
    name : str, optional
        The command word; the method name with ``_`` turned into ``-`` by default.
    help : str, optional
        Its description; the docstring's first line by default.

    Returns
    -------
    callable
        The method, unchanged but marked (or a decorator doing that).

    Raises
    ------
    TypeError
        A parameter's annotation has no option form, a parameter is ``*args``,
        ``**kwargs`` or positional-only, or it is named ``func`` or ``which``.
    """

    def mark(method: F) -> F:
        setattr(method, _MARK, command_spec(method, name=name, help=help))
        return method

    return mark(func) if func is not None else mark


def command_spec(
    method: Callable[..., Any], *, name: str | None = None, help: str | None = None
) -> CommandSpec:
    """Return the command that ``method``'s signature and docstring describe.

    Parameters
    ----------
    method : callable
        A method whose first parameter is ``self``.
    name : str, optional
        The command word (default: the method name with ``-`` for ``_``).
    help : str, optional
        The description (default: the docstring's first line).

    Returns
    -------
    CommandSpec
        The command word, description and options.

    Raises
    ------
    TypeError
        See :func:`command`.
    """
    where = getattr(method, "__qualname__", repr(method))
    doc = inspect.getdoc(method) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    try:
        hints = typing.get_type_hints(method)
    except NameError as error:
        raise TypeError(
            f"@command {where}{_culprit(method, getattr(error, 'name', None))}: its annotation"
            f" names something not defined yet ({error}); define it before the class"
        ) from None
    described = parameter_help(doc)
    options = []
    for parameter in list(inspect.signature(method).parameters.values())[1:]:
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            raise TypeError(
                f"@command {where}: parameter {parameter.name!r} cannot be an option"
                " (*args, **kwargs and positional-only parameters have no option form)"
            )
        if parameter.name in RESERVED:
            raise TypeError(
                f"@command {where}: parameter {parameter.name!r} would clash with the"
                f" command dispatch; rename it (reserved: {', '.join(sorted(RESERVED))})"
            )
        try:
            options.append(
                _option(parameter, hints.get(parameter.name, str), described.get(parameter.name))
            )
        except TypeError as error:
            raise TypeError(f"@command {where}, parameter {parameter.name!r}: {error}") from None
    return CommandSpec(
        word=name or method.__name__.replace("_", "-"),
        description=help if help is not None else first,
        options=tuple(options),
    )


def _culprit(method: Callable[..., Any], missing: str | None) -> str:
    """``", parameter 'x'"`` for the parameter whose annotation names ``missing``."""
    for parameter, annotation in getattr(method, "__annotations__", {}).items():
        if missing and re.search(rf"\b{re.escape(missing)}\b", str(annotation)):
            return f", parameter {parameter!r}"
    return ""


def _option(parameter: inspect.Parameter, hint: Any, described: str | None) -> OptionSpec:
    flag = "--" + parameter.name.replace("_", "-")
    has_default = parameter.default is not inspect.Parameter.empty
    hint, optional = _unwrap_optional(hint)
    kwargs: dict[str, Any] = {"dest": parameter.name}
    if has_default:
        kwargs["default"] = parameter.default
    elif optional:
        kwargs["default"] = None
    else:
        kwargs["required"] = True
    if hint is bool:
        # --flag/--no-flag: omitting both keeps the signature's default.
        kwargs["action"] = argparse.BooleanOptionalAction
        flags: tuple[str, ...] = (flag, "--no-" + flag[2:])
        what = "/".join(flags)
        shown = "on" if parameter.default is True else "off"
        tail = f"default {shown}" if has_default and parameter.default is not None else ""
        if kwargs.get("required"):
            tail = "required"
    else:
        flags = (flag,)
        if typing.get_origin(hint) is list:
            (element,) = typing.get_args(hint) or (str,)
            kwargs["nargs"] = "+"
            what = "one or more " + _value(element, kwargs)
        else:
            what = _value(hint, kwargs)
        if kwargs.get("required"):
            tail = "required"
        elif kwargs["default"] is None:
            tail = ""
        else:
            tail = f"default {_show(kwargs['default'])}"
    summary = "; ".join(part for part in (what, tail) if part)
    text = f"{described} ({summary})" if described else summary
    return OptionSpec(dest=parameter.name, flags=flags, kwargs=kwargs, help=text)


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """``X | None`` and ``Optional[X]`` give ``(X, True)``; other unions are refused."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        others = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(others) != 1:
            raise TypeError(f"the union {_name(hint)} has no option form (only X | None)")
        return others[0], True
    return hint, False


def _value(hint: Any, kwargs: dict[str, Any]) -> str:
    """Set ``type``/``choices`` in ``kwargs`` for one value of ``hint``; describe it."""
    if typing.get_origin(hint) is Literal:
        values = typing.get_args(hint)
        kinds = {type(value) for value in values}
        if len(kinds) != 1 or not kinds <= {str, int, float}:
            raise TypeError(
                f"{_name(hint)}: the values of a Literal must all be str, all int or all float"
            )
        kwargs["type"] = kinds.pop()
        kwargs["choices"] = list(values)
        return "one of " + ", ".join(map(str, values))
    if hint in SCALAR_TYPES:
        kwargs["type"] = hint
        return "path" if hint is Path else hint.__name__
    supported = "str, int, float, Path, bool, Literal[...], list[X], X | None"
    raise TypeError(f"the annotation {_name(hint)} has no option form (supported: {supported})")


def _name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return str(value)


_NUMPY_ENTRY = re.compile(r"^(\w+(?:\s*,\s*\w+)*)\s*(?::.*)?$")
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+):\s*(.*)$")


def parameter_help(doc: str) -> dict[str, str]:
    """Return each parameter's description from a docstring.

    Reads the numpy-style ``Parameters`` section (``name : type`` then indented text;
    ``a, b : float`` describes both) and Sphinx ``:param name: text`` lines.

    Parameters
    ----------
    doc : str
        The cleaned docstring (:func:`inspect.getdoc`).

    Returns
    -------
    dict
        Parameter name to its description, on one line.
    """
    found: dict[str, str] = {}
    lines = doc.splitlines()
    for number, line in enumerate(lines):
        match = _SPHINX_PARAM.match(line.strip())
        if match:
            found[match.group(1)] = _join([match.group(2), *_indented(lines[number + 1 :])])
    section = _numpy_section(lines, "Parameters")
    index = 0
    while index < len(section):
        line = section[index]
        index += 1
        match = _NUMPY_ENTRY.match(line) if line and not line[0].isspace() else None
        if match is None:
            continue
        body = _indented(section[index:])
        index += len(body)
        for name in re.split(r"\s*,\s*", match.group(1)):
            found[name] = _join(body)
    return found


def _numpy_section(lines: list[str], title: str) -> list[str]:
    """Return the lines of a numpy docstring section, up to the next section header."""
    for number in range(len(lines) - 1):
        if lines[number].strip() == title and set(lines[number + 1].strip()) == {"-"}:
            body = lines[number + 2 :]
            for end in range(len(body) - 1):
                if body[end].strip() and set(body[end + 1].strip()) == {"-"}:
                    return body[:end]
            return body
    return []


def _indented(lines: list[str]) -> list[str]:
    """Return the leading indented (or blank) lines: a description's body."""
    body = []
    for line in lines:
        if line and not line[0].isspace():
            break
        body.append(line)
    return body


def _join(lines: list[str]) -> str:
    return " ".join(" ".join(lines).split())


def declared_commands(cls: type) -> dict[str, tuple[str, CommandSpec]]:
    """Return the ``@command`` methods of ``cls``: word to (attribute name, spec).

    Parameters
    ----------
    cls : type
        A :class:`~lab_utils.socket_comm.Server` subclass.

    Returns
    -------
    dict
        Each declared command word with the method's attribute name and its spec.
    """
    found: dict[str, tuple[str, CommandSpec]] = {}
    for attribute in dir(cls):
        spec = getattr(getattr(cls, attribute, None), _MARK, None)
        if isinstance(spec, CommandSpec):
            found[spec.word] = (attribute, spec)
    return found


def add_declared_commands(server: Any, subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add a subparser for every ``@command`` method of ``server``.

    Parameters
    ----------
    server : Server
        The daemon whose class declares the commands.
    subparsers : argparse._SubParsersAction
        Its :attr:`~lab_utils.socket_comm.Server.sp`.
    """
    for word, (attribute, spec) in declared_commands(type(server)).items():
        sub = subparsers.add_parser(name=word, description=spec.description)
        for option in spec.options:
            action = sub.add_argument(*option.flags, **option.kwargs)
            # Set after construction: BooleanOptionalAction (3.10-3.12) would append an
            # unexpanded "%(default)s" to a help given to its constructor.
            action.help = option.help
        names = [option.dest for option in spec.options]
        sub.set_defaults(func=_caller(server, getattr(server, attribute), names), which=word)


def _caller(server: Any, bound: Callable[..., Any], names: list[str]) -> Callable[[], Any]:
    def call() -> Any:
        return bound(**{n: getattr(server.namespace, n) for n in names})

    return call

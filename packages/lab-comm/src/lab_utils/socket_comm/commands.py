"""Declaring commands from methods: ``@command`` builds the subparser from the signature.

::

    class Cryostat(Server):
        @command
        def setpoint(self, kelvin: float, ramp: bool = False) -> str:
            '''Set the temperature setpoint.'''
            ...
            return f"setpoint {kelvin} K"

``setpoint --kelvin 4.2 --ramp`` then calls ``setpoint(kelvin=4.2, ramp=True)`` and the
returned text is the reply. Old-style commands added to ``self.sp`` work beside these.
"""

from __future__ import annotations

import argparse
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "_lab_comm_command"


def command(func: F | None = None, *, name: str | None = None, help: str | None = None) -> Any:
    """Mark a :class:`~lab_utils.socket_comm.Server` method as a command.

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
    """

    def mark(method: F) -> F:
        doc = (inspect.getdoc(method) or "").strip().splitlines()
        setattr(
            method,
            _MARK,
            (name or method.__name__.replace("_", "-"), help or (doc[0] if doc else "")),
        )
        return method

    return mark(func) if func is not None else mark


def add_declared_commands(server: Any, subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add a subparser for every ``@command`` method of ``server``."""
    for attribute in dir(type(server)):
        method = getattr(type(server), attribute, None)
        spec = getattr(method, _MARK, None)
        if spec is None or method is None:
            continue
        word, description = spec
        bound = getattr(server, attribute)
        sub = subparsers.add_parser(name=word, description=description)
        hints = typing.get_type_hints(method)
        names = []
        for parameter in list(inspect.signature(method).parameters.values())[1:]:
            names.append(parameter.name)
            option = "--" + parameter.name.replace("_", "-")
            kind = hints.get(parameter.name, str)
            required = parameter.default is inspect.Parameter.empty
            if kind is bool:
                sub.add_argument(option, dest=parameter.name, action="store_true", help="flag")
            else:
                sub.add_argument(
                    option, dest=parameter.name, type=kind if kind in (int, float, str) else str,
                    required=required, default=None if required else parameter.default,
                    help=getattr(kind, "__name__", str(kind))
                    + ("" if required else f", default {parameter.default}"),
                )  # fmt: skip
        sub.set_defaults(func=_caller(server, bound, names), which=word)


def _caller(server: Any, bound: Callable[..., Any], names: list[str]) -> Callable[[], Any]:
    def call() -> Any:
        return bound(**{n: getattr(server.namespace, n) for n in names})

    return call

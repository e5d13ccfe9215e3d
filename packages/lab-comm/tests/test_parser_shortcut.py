"""The parser's shortcut for a parser of commands only gives what argparse gives, word for word."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from lab_utils.socket_comm.parser import ArgumentParser, MessageError

MESSAGES = [
    "status",
    "status --gauge 3",
    "status --gauge=3",
    "status --gau 3",
    "status -g 3",
    "status --gauge",
    "status --gauge x",
    "status --gauge 3 --gauge 4",
    "status extra",
    "status --unknown",
    "status --unknown=1 more",
    "st --gauge 1",
    "Light on",
    "Light dim",
    "Light",
    "Light on off",
    "log",
    "log --start",
    "log --start --db x -r",
    "log --db",
    "set -5",
    "set -- -5",
    "set",
    "set a b c",
    "set a -x",
    "append --item a --item b",
    "append --item",
    "nope",
    "nope --gauge 3",
    "-x status",
    "--gauge 3 status",
    "status -- 3",
    "help",
    "help status",
    "help status extra",
    "quit",
    "quit now",
]


def _daemon_parser(dest: str | None = None, required: bool = False) -> ArgumentParser:
    parser = ArgumentParser(prog="daemon", description="a daemon")
    options = {"dest": dest, "required": required} if dest else {}
    commands = parser.add_subparsers(title="command", **options)
    status = commands.add_parser("status", aliases=["st"], description="show the state")
    status.add_argument("--gauge", "-g", type=int, default=None)
    status.set_defaults(func="status", which="status")
    light = commands.add_parser("Light")
    light.add_argument("state", choices=["on", "off"])
    light.set_defaults(func="light", which="Light")
    log = commands.add_parser("log")
    log.add_argument("--start", action="store_true")
    log.add_argument("--db", default="main")
    log.add_argument("--restart, -r", action="store_true")
    log.set_defaults(func="log", which="log")
    setter = commands.add_parser("set")
    setter.add_argument("values", nargs="+")
    setter.set_defaults(func="set")
    appender = commands.add_parser("append")
    appender.add_argument("--item", action="append", default=[])
    helper = commands.add_parser("help")
    helper.add_argument("command", nargs="?")
    helper.set_defaults(func="help", which="help")
    commands.add_parser("quit").set_defaults(func="quit", which="quit")
    return parser


def _with_top_defaults() -> ArgumentParser:
    parser = _daemon_parser()
    parser.set_defaults(which="top", level=1)
    return parser


def _with_a_global_option() -> ArgumentParser:
    parser = _daemon_parser()
    parser.add_argument("--verbose", action="store_true")  # not the shape: argparse itself
    return parser


SHAPES: dict[str, Callable[[], ArgumentParser]] = {
    "commands only": _daemon_parser,
    "named and required": lambda: _daemon_parser(dest="command", required=True),
    "top-level defaults": _with_top_defaults,
    "a global option": _with_a_global_option,
}


def _outcome(parse: Callable[[list[str]], argparse.Namespace], words: list[str]) -> object:
    try:
        return list(vars(parse(words)).items())
    except MessageError as error:
        return f"MessageError: {error}"


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_shortcut_parses_and_fails_exactly_like_argparse(shape: str) -> None:
    parser = SHAPES[shape]()
    for message in MESSAGES:
        words = message.split(" ")
        ours = _outcome(parser.parse_args, words)
        theirs = _outcome(lambda w: argparse.ArgumentParser.parse_args(parser, w), words)
        assert ours == theirs, message


def test_the_shortcut_is_taken_for_a_parser_of_commands_only() -> None:
    calls: list[list[str]] = []

    class Watched(argparse._SubParsersAction):  # type: ignore[type-arg]
        def __call__(self, *args: object, **kwargs: object) -> None:
            calls.append(list(args[2]))  # type: ignore[call-overload]
            super().__call__(*args, **kwargs)  # type: ignore[arg-type]

    parser = ArgumentParser(prog="daemon")
    parser.register("action", "parsers", Watched)
    commands = parser.add_subparsers(title="command")
    commands.add_parser("ping").set_defaults(which="ping")
    assert vars(parser.parse_args(["ping"])) == {"which": "ping"}
    assert calls == [["ping"]]
    with pytest.raises(MessageError, match="unrecognized arguments: loud"):
        parser.parse_args(["ping", "loud"])
    with pytest.raises(MessageError, match="invalid choice: 'pong'"):
        parser.parse_args(["pong"])  # not a command: argparse's own pass says so

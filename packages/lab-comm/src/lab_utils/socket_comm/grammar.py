"""Turning a control message into argument words: spaces separate, ``{...}`` groups.

``set --path {/data/run 7/cfg.ini}`` gives ``['set', '--path', '/data/run 7/cfg.ini']``.
The outermost braces of a group are removed and everything inside is kept as it is,
nested braces and runs of spaces included (0.4 could not send those). Words are
separated by one or more spaces; trailing whitespace is ignored.
"""

from __future__ import annotations

from lab_utils.socket_comm.parser import MessageError


def split_message(message: str, left: str = "{", right: str = "}") -> list[str]:
    """Split ``message`` into words, keeping ``{...}`` groups together.

    Parameters
    ----------
    message : str
        The control message.
    left, right : str, optional
        The group delimiters (the server's ``delimiter_left`` and ``delimiter_right``).

    Returns
    -------
    list of str
        The words, with the outer delimiters of each group removed.

    Raises
    ------
    MessageError
        A group is not closed, or a closing delimiter has no opening one.
    """
    if left not in message and right not in message:
        # No groups: the common case, at C speed (and most messages have no empty words).
        split = message.rstrip().split(" ")
        return [word for word in split if word] if "" in split else split
    words: list[str] = []
    current: list[str] = []
    in_word = False
    depth = 0
    for char in message.rstrip():
        if depth == 0 and char == " ":
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
            continue
        in_word = True
        if char == left:
            depth += 1
            if depth == 1:
                continue
        elif char == right:
            if depth == 0:
                raise MessageError(f"unbalanced '{right}' in the message")
            depth -= 1
            if depth == 0:
                continue
        current.append(char)
    if depth:
        raise MessageError(f"a '{left}' group is not closed in the message")
    if in_word:
        words.append("".join(current))
    return words

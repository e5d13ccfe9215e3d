"""Ctrl+C ends the command line with ``interrupted`` and status 130 from its first moments:
while it still imports, as while it waits for a reply, never with a traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

INTERRUPTED = 130

# An extension module the command line's own imports load (the client's socket), and
# nothing before them: once a process has it mapped, it runs the command line's code.
MARKER = "/_socket."

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/maps").exists(), reason="reads /proc/<pid>/maps (Linux)"
)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that takes connections and never answers: ``send`` waits there."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        yield listener.getsockname()[1]


def _wait_until_mapped(process: subprocess.Popen[str], command: list[str]) -> None:
    """Poll (deadline 30 s) until ``process`` runs ``command`` and has loaded :data:`MARKER`.

    Until its exec, the child's maps are those of this process (which has the marker): its
    command line must end with ``command``'s arguments first (a script's starts with its
    interpreter), and a signal sent before the exec is lost.
    """
    deadline = time.monotonic() + 30
    proc = Path(f"/proc/{process.pid}")
    arguments = "\0".join(command[1:]) + "\0"
    while time.monotonic() < deadline:
        try:
            started = (proc / "cmdline").read_text().endswith(arguments)
            if started and MARKER in (proc / "maps").read_text():
                return
        except (FileNotFoundError, ProcessLookupError):  # it has ended already
            return
        if process.poll() is not None:
            return
        time.sleep(0.0002)  # a short poll: the imports take tens of milliseconds
    pytest.fail(f"the command line never loaded {MARKER!r} (pid {process.pid})")


def _interrupt_early(command: list[str], port: int, delay: float) -> tuple[int, str]:
    """Start ``command ... send status`` to ``port``, SIGINT it ``delay`` s after its first
    import of its own; return its exit status and stderr."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "FORCE_"))}
    argv = [*command, "send", "--port", str(port), "--timeout", "60", "status"]
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
    )  # fmt: skip
    try:
        _wait_until_mapped(process, argv)
        if delay:
            time.sleep(delay)  # lands the signal at a different point of the imports
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, err


def _commands() -> list[list[str]]:
    script = Path(sys.executable).with_name("lab-comm")
    commands = [[sys.executable, "-m", "lab_utils.socket_comm"]]
    if script.exists():  # the console script of this environment
        commands.append([str(script)])
    return commands


@pytest.mark.parametrize("how", ["python -m", "lab-comm"])
def test_ctrl_c_while_the_command_line_starts_is_status_130_without_traceback(
    how: str, silent_port: int
) -> None:
    commands = _commands()
    if how == "lab-comm" and len(commands) < 2:
        pytest.skip("no lab-comm console script beside this interpreter")
    command = commands[0] if how == "python -m" else commands[1]
    delays = [0.0, 0.0, 0.0, 0.001, 0.002, 0.003, 0.005, 0.008, 0.013, 0.021, 0.034, 0.055]
    for delay in delays:
        status, err = _interrupt_early(command, silent_port, delay)
        assert "Traceback" not in err, f"SIGINT {delay * 1000:.0f} ms in: {err}"
        assert (status, err) == (INTERRUPTED, "interrupted\n"), f"SIGINT {delay * 1000:.0f} ms in"

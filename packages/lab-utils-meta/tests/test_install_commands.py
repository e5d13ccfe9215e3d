"""The install commands of docs/install.md (and the README) work exactly as written.

Each marked block runs line by line in a fresh copy of the checkout, from a shell whose
PATH no longer holds this test's environment, as a user would type it. Then each
environment it created holds what the page promises: a DAQ node lab-db and
psycopg2-binary and nothing else, a server all four of our distributions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tools"))

import install_commands  # noqa: E402 - lives in the checkout's tools/, not in a wheel

# What each documented environment must hold besides the installers themselves.
INSTALLERS = {"pip", "setuptools", "wheel"}
EXPECTED = {
    "daq": {"lab-db", "psycopg2-binary"},
    "server": {"lab-db", "lab-comm", "lab-log", "lab-utils", "psycopg2-binary", "zc-lockfile"},
}
IMPORTABLE = {
    "daq": ("database", ["socket_comm", "custom_logging"]),
    "server": ("database", []),
}
CONSOLE_SCRIPTS = {"daq": ["lab-db"], "server": ["lab-db", "lab-comm", "lab-log"]}


def _user_shell_environment() -> dict[str, str]:
    """This process's environment without its virtual environment, as in a user's shell."""
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    own = {str(Path(sys.prefix) / "bin"), str(Path(sys.executable).parent)}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p not in own)
    return env


def _fresh_checkout(destination: Path) -> Path:
    """Copy the files a clone would hold (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        # A virtual environment left in the checkout (say, by running these very commands
        # there) is no part of a clone.
        if (ROOT / Path(name).parts[0] / "pyvenv.cfg").exists():
            continue
        if source.is_file() and not source.is_symlink():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed(venv: Path) -> set[str]:
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {_canonical(entry["name"]) for entry in json.loads(listed)} - INSTALLERS


@pytest.mark.parametrize("block", ["wheels", "checkout"])
def test_documented_install_commands_give_each_machine_what_the_page_promises(
    block: str, tmp_path: Path
) -> None:
    lines = install_commands.commands(block)
    checkout = _fresh_checkout(tmp_path / "lab-utils")
    env = _user_shell_environment()
    for line in lines:
        result = subprocess.run(
            ["bash", "-c", line], cwd=checkout, env=env,
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{line}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"

    # Every environment the block sets up, but the checkout's own .venv that holds nox.
    made = [m[1] for line in lines for m in [re.search(r"python3 -m venv (\S+)", line)] if m]
    venvs = [name for name in made if name != ".venv"]
    assert sorted(venvs) == sorted(EXPECTED), f"the {block} block should set up {list(EXPECTED)}"
    for name in venvs:
        venv = checkout / name
        assert _installed(venv) == EXPECTED[name], name
        own, absent = IMPORTABLE[name]
        check = subprocess.run(
            [str(venv / "bin" / "python"), str(ROOT / "tools" / "import_check.py"), own, *absent],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr
        if name == "server":
            imported = subprocess.run(
                [str(venv / "bin" / "python"), "-c",
                 "from lab_utils import custom_logging, database, socket_comm"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert imported.returncode == 0, imported.stderr
        for script in CONSOLE_SCRIPTS[name]:
            answered = subprocess.run(
                [str(venv / "bin" / script), "--help"], capture_output=True, text=True, check=False
            )
            assert answered.returncode == 0, answered.stderr

    if block == "wheels":
        wheels = sorted(p.name.split("-")[0] for p in (checkout / "dist").glob("*.whl"))
        assert wheels == ["lab_comm", "lab_db", "lab_log", "lab_utils"]

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


def _run_block(block: str, checkout: Path) -> list[str]:
    """Run the block's lines in `checkout` as a user's shell would; return the venvs made."""
    lines = install_commands.commands(block)
    for line in lines:
        _shell(line, checkout)
    # Every environment the block sets up, but the checkout's own .venv that holds nox.
    made = [m[1] for line in lines for m in [re.search(r"python3 -m venv (\S+)", line)] if m]
    return [name for name in made if name != ".venv"]


def _shell(line: str, cwd: Path) -> None:
    result = subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=_user_shell_environment(),
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{line}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def wheels_checkout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A fresh checkout after the wheels block ran in it, and the venvs the block made."""
    checkout = _fresh_checkout(tmp_path_factory.mktemp("wheels") / "lab-utils")
    return checkout, _run_block("wheels", checkout)


def _assert_machines(checkout: Path, venvs: list[str]) -> None:
    assert sorted(venvs) == sorted(EXPECTED), f"the block should set up {list(EXPECTED)}"
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


def test_wheels_block_builds_the_four_wheels_and_gives_each_machine_its_share(
    wheels_checkout: tuple[Path, list[str]],
) -> None:
    checkout, venvs = wheels_checkout
    wheels = sorted(p.name.split("-")[0] for p in (checkout / "dist").glob("*.whl"))
    assert wheels == ["lab_comm", "lab_db", "lab_log", "lab_utils"]
    _assert_machines(checkout, venvs)


def test_wheels_server_line_replaces_an_installed_lab_utils_0_5(
    wheels_checkout: tuple[Path, list[str]],
) -> None:
    checkout, _ = wheels_checkout
    (server_line,) = [c for c in install_commands.commands("wheels") if "lab-utils" in c]
    # The same line on a server that still holds the old single package.
    old = "old-server"
    upgrade = server_line.replace("python3 -m venv server && server/", f"{old}/")
    assert upgrade != server_line, server_line
    _shell(
        f"python3 -m venv {old} && {old}/bin/pip install -q --no-deps lab-utils==0.5.12", checkout
    )
    assert _installed(checkout / old) == {"lab-utils"}
    _shell(upgrade, checkout)
    assert _installed(checkout / old) == EXPECTED["server"]
    check = subprocess.run(
        [str(checkout / old / "bin" / "python"), "-c",
         "import lab_utils, lab_utils.database as d; print(lab_utils.__file__, d.__version__)"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert check.stdout.split()[0] == "None"  # the namespace, not 0.5.12's __init__.py


def test_checkout_block_gives_each_machine_its_share(tmp_path: Path) -> None:
    checkout = _fresh_checkout(tmp_path / "lab-utils")
    _assert_machines(checkout, _run_block("checkout", checkout))

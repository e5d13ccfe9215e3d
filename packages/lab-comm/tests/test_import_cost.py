"""Importing lab-comm costs little: ssl, the daemon, the client and @command load on demand."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHECK = (
    "import json, sys; import {module}; "
    "print(json.dumps([m for m in ('ssl', '_ssl') if m in sys.modules]))"
)


def _loaded_after(module: str) -> list[str]:
    """Import ``module`` in a fresh interpreter; return which of ssl, _ssl it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", CHECK.format(module=module)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return list(json.loads(done.stdout))


@pytest.mark.parametrize(
    "module",
    [
        "lab_utils.socket_comm",  # a daemon or a client in a lab app
        "lab_utils.socket_comm.__main__",  # the command line
        "lab_utils.socket_comm.fleet",
        "lab_utils.custom_logging",  # what lab-comm logs through
    ],
)
def test_importing_does_not_import_ssl(module: str) -> None:
    assert _loaded_after("sys") == []  # the interpreter itself does not bring it
    assert _loaded_after(module) == []


def test_tls_still_imports_it_when_used(tmp_path: object) -> None:
    code = (
        "import sys; from lab_utils.socket_comm import Client; "
        "Client(port=1, tls=True); print('ssl' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == "True\n"


def _fresh(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; return what it printed, one item per line."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.splitlines()


NEW_MODULES = (
    "import sys\n"
    "before = set(sys.modules)\n"
    "{statement}\n"
    "print(' '.join(sorted(set(sys.modules) - before)))\n"
)

# What neither a daemon written the 0.4 way nor a client uses: the @command machinery
# (inspect, typing, dataclasses) and the HMAC of shared secrets.
NEVER = ["dataclasses", "hashlib", "inspect", "lab_utils.socket_comm.commands", "typing"]


@pytest.mark.parametrize(
    ("statement", "loaded", "not_loaded"),
    [
        ("import lab_utils.socket_comm", [], ["lab_utils.socket_comm.server", "argparse"]),
        (
            "from lab_utils.socket_comm import Client",
            ["lab_utils.socket_comm.client"],
            ["lab_utils.socket_comm.server", "argparse", "lab_utils.socket_comm.transport"],
        ),
        (
            "from lab_utils.socket_comm import Server",
            ["lab_utils.socket_comm.server", "argparse"],
            ["lab_utils.socket_comm.client"],
        ),
    ],
    ids=["package", "client", "daemon"],
)
def test_each_name_imports_what_it_needs_and_no_more(
    statement: str, loaded: list[str], not_loaded: list[str]
) -> None:
    (imported,) = _fresh(NEW_MODULES.format(statement=statement))
    modules = imported.split()
    assert [m for m in loaded if m not in modules] == []
    assert [m for m in [*not_loaded, *NEVER] if m in modules] == []


def test_a_0_4_daemon_subclasses_the_lazily_imported_server() -> None:
    code = (
        "import sys\n"
        "from lab_utils.socket_comm import Client, Server\n"
        "import lab_utils.socket_comm as package\n"
        "class Cryo(Server):\n"
        "    '''Cryostat of the tests.'''\n"
        "    def __init__(self, pid):\n"
        "        super().__init__(None, pid, host='127.0.0.1', port=0)\n"
        "        status = self.sp.add_parser(name='status', description='show the state')\n"
        "        status.set_defaults(func=self.status, which='status')\n"
        "    def status(self):\n"
        "        self.reply = 'cold'\n"
        "import tempfile, os\n"
        "pid = os.path.join(tempfile.mkdtemp(), 'cryo.pid')\n"
        "with Cryo(pid).start_in_thread() as running:\n"
        "    print(Client(host='127.0.0.1', port=running.address).send_message('status'))\n"
        "print(Server.__module__, Client.__module__, package.Server is Server)\n"
        "print(Cryo(pid).parser.description)\n"
        "print('inspect' in sys.modules, 'lab_utils.socket_comm.commands' in sys.modules)\n"
    )
    assert _fresh(code) == [
        "cold",
        "lab_utils.socket_comm.server lab_utils.socket_comm.client True",
        "Cryostat of the tests.",
        "False False",
    ]


def test_star_import_and_dir_list_every_public_name() -> None:
    import lab_utils.socket_comm as package

    namespace: dict[str, object] = {}
    exec("from lab_utils.socket_comm import *", namespace)  # what apps write
    assert set(package.__all__) <= set(namespace)
    assert set(package.__all__) <= set(dir(package))


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    import lab_utils.socket_comm as package

    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018

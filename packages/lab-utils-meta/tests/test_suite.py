"""The lab-utils meta-package installs the three pieces, which import together."""

import importlib
import importlib.metadata
import importlib.util

from packaging.requirements import Requirement

PIECES = {"lab-db": "database", "lab-comm": "socket_comm", "lab-log": "custom_logging"}


def test_the_three_modules_import_from_the_namespace() -> None:
    from lab_utils import custom_logging, database, socket_comm

    for module in (database, socket_comm, custom_logging):
        assert module.__version__ == importlib.metadata.version(_dist_of(module.__name__))


def test_meta_distribution_requires_exactly_the_three_pieces() -> None:
    requires = importlib.metadata.requires("lab-utils") or []
    names = {Requirement(r).name for r in requires if "extra ==" not in r}
    assert names == set(PIECES)


def test_meta_is_version_one_or_higher() -> None:
    major = int(importlib.metadata.version("lab-utils").split(".")[0])
    assert major >= 1


def test_meta_ships_no_code() -> None:
    files = importlib.metadata.files("lab-utils") or []
    shipped = [str(f) for f in files if ".dist-info" not in str(f)]
    assert shipped == []


def test_namespace_has_no_init_module() -> None:
    namespace = importlib.import_module("lab_utils")
    assert getattr(namespace, "__file__", None) is None
    assert len(list(namespace.__path__)) >= 1


def _dist_of(module_name: str) -> str:
    sub = module_name.rsplit(".", 1)[-1]
    return next(dist for dist, mod in PIECES.items() if mod == sub)


def test_modules_come_from_the_pieces_not_from_an_old_single_package() -> None:
    # lab-utils 0.x shipped lab_utils/database.py etc.; ours are packages of the pieces.
    for dist, module in PIECES.items():
        spec = importlib.util.find_spec(f"lab_utils.{module}")
        assert spec is not None
        assert spec.origin is not None
        assert spec.origin.endswith(f"{module}/__init__.py"), (dist, spec.origin)

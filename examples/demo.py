"""Smoke example of the lab-utils suite: the three pieces import together.

Run it with `nox -s demo`. The full demo (an acquisition daemon writing to PostgreSQL,
driven over TCP, logging to console, file and alarm socket) replaces this script.
"""

from __future__ import annotations

from lab_utils import custom_logging, database, socket_comm


def main() -> None:
    for module in (database, socket_comm, custom_logging):
        print(f"{module.__name__:28} {module.__version__}")


if __name__ == "__main__":
    main()

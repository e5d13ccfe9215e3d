"""``python -m lab_utils.database``: the ``lab-db`` command line (see :mod:`.cli`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from lab_utils.database import cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``lab-db`` command line; return the exit status."""
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())

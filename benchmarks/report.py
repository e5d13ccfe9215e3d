"""Measurements, the side-by-side table and the JSON file shared by every benchmark area.

Machines here are shared and noisy: a figure is only compared with its peer measured in the
same run, and each pair is measured interleaved (peer, ours, peer, ours, ...) taking the best
of several rounds, so that a burst of load hits both sides.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Comparison:
    """One line of a table: our figure next to the peer's, and the target for the ratio."""

    area: str
    what: str
    unit: str
    ours: float
    peer: float
    peer_name: str
    target: str
    notes: dict[str, float] = field(default_factory=dict)
    median_ratio: float | None = None
    """The median of per-rep ratios, when the run measured pairs rep by rep."""

    @property
    def ratio(self) -> float:
        """Ours divided by the peer's figure (a rate ratio, or a cost ratio for costs).

        The median of the per-rep ratios when the run gives it.
        """
        if self.median_ratio is not None:
            return self.median_ratio
        return self.ours / self.peer if self.peer else float("nan")

    def meets_target(self) -> bool | None:
        """Whether the ratio meets the target (`>= x` or `<= x`); None when only reported."""
        if self.target.startswith(">="):
            return self.ratio >= float(self.target[2:].rstrip("x"))
        if self.target.startswith("<="):
            return self.ratio <= float(self.target[2:].rstrip("x"))
        return None


def best_of(rounds: int, *runs: Callable[[], float], higher_is_better: bool = True) -> list[float]:
    """Call each run `rounds` times, interleaved; return each run's best figure.

    The best is the highest for rates and the lowest for costs (`higher_is_better=False`).
    """
    pick = max if higher_is_better else min
    results: list[list[float]] = [[] for _ in runs]
    for _ in range(rounds):
        for i, run in enumerate(runs):
            results[i].append(run())
    return [pick(figures) for figures in results]


def rate(count: int, seconds: float) -> float:
    """Operations per second."""
    return count / seconds if seconds > 0 else float("inf")


def timed(action: Callable[[], object]) -> float:
    """Seconds taken by one call of `action`."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def print_table(rows: list[Comparison]) -> None:
    """Print the comparisons as an aligned text table."""
    header = ("area", "what", "peer", "peer figure", "ours", "ratio", "target", "")
    lines = [header]
    for r in rows:
        verdict = {True: "ok", False: "MISSED", None: ""}[r.meets_target()]
        lines.append(
            (
                r.area,
                r.what,
                r.peer_name,
                f"{r.peer:,.1f} {r.unit}",
                f"{r.ours:,.1f} {r.unit}",
                f"{r.ratio:.2f}x",
                r.target,
                verdict,
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def write_json(rows: list[Comparison], path: Path) -> None:
    """Write the comparisons, with the machine's description, to `path`."""
    payload = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor(),
        },
        "results": [
            {**asdict(r), "ratio": r.ratio, "meets_target": r.meets_target()} for r in rows
        ],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")

"""Pictures of a table: chosen columns over time, one panel per column or per unit.

Needs matplotlib (``pip install 'lab-db[plot]'``). The time axis is in local time with
the zone in its label; rows missing for a while (an outage) and NULL values show as gaps,
never as a straight line across; bucketed reads draw the mean with a min/max band.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab_utils.database.database import Database
from lab_utils.database.downsample import Series, read_series

if TYPE_CHECKING:
    # For annotations only: the module imports without the plot extra installed.
    from matplotlib.figure import Figure

FORMATS = (".png", ".svg", ".pdf")
"""File types :func:`save` writes, chosen by suffix."""

INSTALL_HINT = "pip install 'lab-db[plot]'"
"""How to get matplotlib, the plot's one extra requirement."""


@dataclasses.dataclass
class Panel:
    """One panel: its y label and the columns drawn in it."""

    label: str
    columns: list[str]


def panels(columns: Sequence[str], per: str, units: Mapping[str, str]) -> list[Panel]:
    """Return the panels: one per column, or (``per='unit'``) one per unit.

    Columns without a unit in ``units`` get a panel of their own either way.
    """
    if per == "column":
        return [Panel(f"{c} ({units[c]})" if c in units else c, [c]) for c in columns]
    grouped: dict[str, Panel] = {}
    for column in columns:
        unit = units.get(column)
        key = unit if unit is not None else f"column {column}"
        grouped.setdefault(key, Panel(unit if unit is not None else column, [])).columns.append(
            column
        )
    return list(grouped.values())


def _gaps(times: Sequence[dt.datetime], bucket: dt.timedelta | None) -> list[int]:
    """Indexes after which data are missing for a while.

    Bucketed: a whole empty bucket is a hole at this resolution. Rows: a step ten times
    the usual one, so that a busy machine's jitter does not cut the line.
    """
    if len(times) < 3:
        return []
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    limit = 1.5 * bucket.total_seconds() if bucket else 10 * statistics.median(steps)
    return [i for i, step in enumerate(steps) if step > limit]


def _with_gaps(values: Sequence[Any], gaps: Sequence[int], filler: Any) -> list[Any]:
    out = list(values)
    for index in reversed(gaps):
        out.insert(index + 1, filler)
    return out


def local_zone() -> dt.tzinfo:
    """Return this machine's time zone now (``TZ`` honoured)."""
    zone = dt.datetime.now().astimezone().tzinfo
    assert zone is not None  # astimezone() always sets one
    return zone


def zone_label(zone: dt.tzinfo, at: dt.datetime) -> str:
    """Return e.g. ``CET, UTC+01:00``: the zone's name and offset at ``at``."""
    local = at.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local.tzname()}, UTC{offset[:3]}:{offset[3:]}"


def figure(
    series: Series,
    layout: Sequence[Panel],
    *,
    title: str = "",
    size: tuple[int, int] = (1200, 800),
    dpi: int = 100,
    zone: dt.tzinfo | None = None,
    span: tuple[dt.datetime, dt.datetime] | None = None,
) -> Figure:
    """Return a matplotlib figure of ``series`` in ``layout``, ``size`` pixels at ``dpi``.

    ``span`` is the time range asked for; the axis shows all of it.
    """
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    zone = zone or local_zone()
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi, layout="constrained")
    axes = fig.subplots(len(layout), 1, sharex=True, squeeze=False)[:, 0]
    gaps = _gaps(series.times, series.bucket)
    gap_time = [series.times[i] + (series.times[i + 1] - series.times[i]) / 2 for i in gaps]
    times = list(series.times)
    for index, when in zip(reversed(gaps), reversed(gap_time), strict=True):
        times.insert(index + 1, when)
    nan = float("nan")
    for ax, panel in zip(axes, layout, strict=True):
        for column in panel.columns:
            band = series.columns[column]
            mean = [nan if v is None else v for v in _with_gaps(band.mean, gaps, None)]
            # Few points: mark them, a lone reading would be invisible as a line.
            marker = "." if len(series.times) < 100 else None
            (line,) = ax.plot(times, mean, label=column, linewidth=1, marker=marker)
            if series.bucket is not None:
                low = [nan if v is None else v for v in _with_gaps(band.low, gaps, None)]
                high = [nan if v is None else v for v in _with_gaps(band.high, gaps, None)]
                ax.fill_between(
                    times,
                    low,
                    high,
                    color=line.get_color(),
                    alpha=0.25,
                    linewidth=0,
                    label=f"{column} min-max",
                )
        ax.set_ylabel(panel.label)
        ax.grid(alpha=0.3)
        # A panel labelled by its unit names its column(s) in a legend; one labelled by
        # its only column needs none.
        if panel.columns != [panel.label]:
            ax.legend(loc="upper left", fontsize="small")
    if span is not None and span[1] - span[0] > dt.timedelta(seconds=1):
        axes[-1].set_xlim(span[0], span[1])
    # matplotlib.dates has no annotations yet: these two calls are untyped to mypy.
    locator = mdates.AutoDateLocator(tz=zone)  # type: ignore[no-untyped-call]
    concise = mdates.ConciseDateFormatter(locator, tz=zone)  # type: ignore[no-untyped-call]
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(concise)
    at = series.times[0] if series.times else dt.datetime.now(dt.timezone.utc)
    axes[-1].set_xlabel(f"time ({zone_label(zone, at)})")
    if not series.times:
        axes[0].text(
            0.5, 0.5, "no rows in this range", transform=axes[0].transAxes, ha="center", va="center"
        )
    how = (
        f"{series.rows:,} rows in {len(series.times):,} buckets of {series.bucket},"
        " mean and min-max"
        if series.bucket is not None
        else f"{series.rows:,} row{'' if series.rows == 1 else 's'}"
    )
    fig.suptitle(f"{title}  ({how})" if title else how, fontsize="medium")
    return fig


def plot_table(
    db: Database,
    table: str,
    columns: Sequence[str],
    start: dt.datetime,
    end: dt.datetime,
    *,
    per: str = "column",
    units: Mapping[str, str] | None = None,
    points: int = 2000,
    size: tuple[int, int] = (1200, 800),
    dpi: int = 100,
) -> Figure:
    """Return the figure of ``columns`` of ``table`` over ``[start, end)``.

    Raises
    ------
    ImportError
        matplotlib is not installed (``pip install 'lab-db[plot]'``).
    """
    series = read_series(db, table, columns, start, end, points)
    layout = panels(columns, per, units or {})
    return figure(series, layout, title=table, size=size, dpi=dpi, span=(start, end))


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` as PNG, SVG or PDF (by suffix); return the path.

    Raises
    ------
    ValueError
        Another suffix.
    """
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise ValueError(f"{target.name}: the file name must end in {', '.join(FORMATS)}")
    fig.savefig(target, dpi=fig.dpi)
    return target

"""Pictures of a table: downsampling in the database, the figure, and ``lab-db plot``."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lab_utils.database import Database, DataType, EmbeddedPostgres
from lab_utils.database.downsample import bucket_width, read_series
from lab_utils.database.plot import Panel, figure, plot_table

matplotlib = pytest.importorskip("matplotlib", reason="the test extra installs matplotlib")
from PIL import Image  # noqa: E402 - matplotlib brings Pillow

START = dt.datetime(2026, 1, 15, 8, 0, tzinfo=dt.timezone.utc)
SPIKE, DIP = 1000.0, -1000.0
_names = itertools.count()


@pytest.fixture(params=["postgresql", "timescaledb"])
def any_db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A database on plain PostgreSQL (date_bin) and one with TimescaleDB (time_bucket)."""
    if request.param == "postgresql":
        yield request.getfixturevalue("db")
        return
    server: EmbeddedPostgres = request.getfixturevalue("timescale_community")
    database = server.database(f"plot_{next(_names)}")
    with database.connection.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    database.connection.commit()  # type: ignore[union-attr]
    assert database.timescale_version()
    yield database
    database.close()


def _signal(n: int) -> float:
    if n == 4321:
        return SPIKE
    if n == 7777:
        return DIP
    return 10 * math.sin(n / 300)


def _fill(db: Database, count: int, skip: range = range(0)) -> None:
    db.create_timescale_db("cryo")
    db.new_column("cryo", "t4k", DataType.double)
    db.new_column("cryo", "p_ivc", DataType.double)
    rows = (
        (START + dt.timedelta(seconds=n), _signal(n), 1e-6 * (1 + n % 7))
        for n in range(count)
        if n not in skip
    )
    db.insert_many("cryo", ["time", "t4k", "p_ivc"], rows)


def test_downsampling_returns_the_expected_buckets_and_keeps_the_extremes(
    any_db: Database,
) -> None:
    _fill(any_db, 10_000)
    end = START + dt.timedelta(seconds=10_000)
    series = read_series(any_db, "cryo", ["t4k"], START, end, points=100)
    assert series.bucket == dt.timedelta(seconds=100)
    assert len(series.times) == 100
    assert series.times[0] == START
    assert series.rows == 10_000
    band = series.columns["t4k"]
    assert max(band.high) == SPIKE  # type: ignore[type-var]
    assert min(band.low) == DIP  # type: ignore[type-var]
    assert max(band.mean) < SPIKE / 10  # type: ignore[type-var] - a spike is in the band only


def test_bucket_width_is_rounded_up_to_whole_units() -> None:
    day = dt.timedelta(days=1)
    assert bucket_width(START, START + day + dt.timedelta(microseconds=1), 2000) == (
        dt.timedelta(seconds=44)  # 43.2 s, rounded up: 1964 buckets, never more than asked
    )
    assert bucket_width(START, START + dt.timedelta(seconds=3), 2000) == (
        dt.timedelta(milliseconds=2)  # 1.5 ms
    )
    assert bucket_width(START, START + dt.timedelta(milliseconds=1), 2000) == (
        dt.timedelta(microseconds=1)
    )


def test_few_rows_come_back_as_they_are(db: Database) -> None:
    _fill(db, 500)
    series = read_series(db, "cryo", ["t4k"], START, START + dt.timedelta(hours=1), points=2000)
    assert series.bucket is None
    assert series.rows == len(series.times) == 500
    assert series.columns["t4k"].mean == [_signal(n) for n in range(500)]


def test_figure_plots_exactly_the_rows_written(db: Database) -> None:
    _fill(db, 1500)
    end = START + dt.timedelta(seconds=1500)
    fig = plot_table(db, "cryo", ["t4k", "p_ivc"], START, end, size=(900, 600))
    assert [ax.get_ylabel() for ax in fig.axes] == ["t4k", "p_ivc"]
    line = fig.axes[0].lines[0]
    ys = [y for y in line.get_ydata() if not math.isnan(y)]
    written = [_signal(n) for n in range(1500)]
    assert (min(ys), max(ys), len(ys)) == (min(written), max(written), 1500)
    xs = line.get_xdata()
    assert (min(xs), max(xs)) == (START, START + dt.timedelta(seconds=1499))


def test_bucketed_figure_draws_min_max_bands(db: Database) -> None:
    _fill(db, 10_000)
    end = START + dt.timedelta(seconds=10_000)
    fig = plot_table(db, "cryo", ["t4k"], START, end, points=200)
    band = fig.axes[0].collections[0].get_paths()[0]
    assert band.vertices[:, 1].max() == SPIKE
    assert band.vertices[:, 1].min() == DIP
    assert len(fig.axes[0].lines[0].get_ydata()) == 200


def test_missing_rows_are_a_gap_not_a_line(db: Database) -> None:
    _fill(db, 3000, skip=range(1000, 2000))
    fig = plot_table(db, "cryo", ["t4k"], START, START + dt.timedelta(seconds=3000))
    ys = list(fig.axes[0].lines[0].get_ydata())
    assert len(ys) == 2001
    assert math.isnan(ys[1000])
    assert sum(math.isnan(y) for y in ys) == 1


def test_empty_buckets_are_a_gap_too(db: Database) -> None:
    _fill(db, 10_000, skip=range(4000, 6000))
    fig = plot_table(db, "cryo", ["t4k"], START, START + dt.timedelta(seconds=10_000), points=100)
    ys = list(fig.axes[0].lines[0].get_ydata())
    assert len(ys) == 81  # 80 buckets with rows, and the gap between them
    assert math.isnan(ys[40])
    assert sum(math.isnan(y) for y in ys) == 1


def test_panels_per_unit_and_local_time_axis_with_its_zone(db: Database) -> None:
    _fill(db, 100)
    series = read_series(db, "cryo", ["t4k", "p_ivc"], START, START + dt.timedelta(seconds=100))
    layout = [Panel("K", ["t4k"]), Panel("mbar", ["p_ivc"])]
    fig = figure(series, layout, zone=ZoneInfo("Europe/Berlin"))
    assert [ax.get_ylabel() for ax in fig.axes] == ["K", "mbar"]
    assert fig.axes[-1].get_xlabel() == "time (CET, UTC+01:00)"


def test_a_panel_labelled_by_its_unit_names_its_column(db: Database) -> None:
    _fill(db, 100)
    series = read_series(db, "cryo", ["t4k", "p_ivc"], START, START + dt.timedelta(seconds=100))
    fig = figure(series, [Panel("K", ["t4k"]), Panel("p_ivc", ["p_ivc"])])
    unit_panel, column_panel = fig.axes
    legend = unit_panel.get_legend()
    assert legend is not None
    assert [text.get_text() for text in legend.get_texts()] == ["t4k"]
    assert column_panel.get_legend() is None


def _plot(
    db: Database, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    url = f"postgresql://{db.user}@{db.host}:{db.port}/{db.database}"
    return subprocess.run(
        [sys.executable, "-m", "lab_utils.database", "plot", "cryo", *args],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "DATABASE_URL": url, **(env or {})},
    )  # fmt: skip


def test_plot_command_writes_a_picture_of_the_requested_size(db: Database, tmp_path: Path) -> None:
    _fill(db, 5000)
    target = tmp_path / "cryo.png"
    made = _plot(db, "t4k", "p_ivc", "-o", str(target), "--size", "640x480", "--per", "unit",
                 "--unit", "t4k=K", "--unit", "p_ivc=mbar", "--points", "500")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout == f"{target}\n"
    with Image.open(target) as image:
        assert image.format == "PNG"
        assert image.size == (640, 480)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is not None
    assert len(colours) > 20  # lines, bands and text, not a blank page
    for suffix, magic in ((".svg", b"<?xml"), (".pdf", b"%PDF")):
        other = tmp_path / f"cryo{suffix}"
        assert _plot(db, "-o", str(other), "--from", "2026-01-15T08:00:00Z").returncode == 0
        assert other.read_bytes().startswith(magic)


def test_plot_command_since_reads_only_the_recent_rows(db: Database, tmp_path: Path) -> None:
    _fill(db, 10)  # in January: nothing in the last hour
    empty = _plot(db, "-o", str(tmp_path / "recent.png"), "--since", "1h")
    assert empty.returncode == 0, empty.stderr
    wrong = _plot(db, "-o", str(tmp_path / "x.png"), "--since", "soon")
    assert wrong.returncode == 2
    assert "'soon' is not a duration" in wrong.stderr
    bad_type = _plot(db, "-o", str(tmp_path / "x.gif"))
    assert bad_type.returncode == 2
    assert "must end in .png, .svg, .pdf" in bad_type.stderr


def test_plot_without_matplotlib_says_how_to_install_it(db: Database, tmp_path: Path) -> None:
    _fill(db, 10)
    absent = (
        "import sys; sys.modules['matplotlib'] = None\n"  # as if it were not installed
        "from lab_utils.database.__main__ import main; sys.exit(main(sys.argv[1:]))"
    )
    url = f"postgresql://{db.user}@{db.host}:{db.port}/{db.database}"
    ran = subprocess.run(
        [sys.executable, "-c", absent, "plot", "cryo", "-o", str(tmp_path / "x.png")],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "DATABASE_URL": url},
    )  # fmt: skip
    assert ran.returncode == 2
    assert ran.stderr == (
        "error: lab-db plot needs matplotlib, which is not installed\n"
        "hint: pip install 'lab-db[plot]'\n"
    )

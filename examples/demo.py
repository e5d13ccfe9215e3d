"""The lab-utils demo: a small but real data-acquisition app built only from the suite.

1. A PostgreSQL server: the one in ``--db-config`` (or $LAB_DB_CONFIG), else an embedded one.
2. Logging from an INI file: coloured console, a daily JSON file, alarms to a listener.
3. A DAQ daemon (a socket_comm Server) whose acquisition thread reads a simulated
   cryostat and writes rows through the buffered writer.
4. A Client drives it: status, start, wait, stop, status, quit. Then a summary, and a
   plot of what was acquired (with ``lab-db[plot]``; ``--plot FILE`` says where).

Run it with ``nox -s demo`` (see the README); ``--keep-running`` leaves the daemon up so
you can talk to it: ``python -m lab_utils.socket_comm --port PORT send status``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from lab_utils.custom_logging import AlarmListener, configure_logging, getLogger, shutdown_logging
from lab_utils.custom_logging.listener import console_handler
from lab_utils.database import BufferedWriter, Database, DataType, EmbeddedPostgres
from lab_utils.socket_comm import Client, Server

TABLE = "cryostat"
CHANNELS = ["stage_4k", "stage_50k", "sample", "magnet", "p_ivc", "p_ovc", "he_level", "heater"]
UNITS = {"stage_4k": "K", "stage_50k": "K", "sample": "K", "magnet": "K",
         "p_ivc": "mbar", "p_ovc": "mbar", "he_level": "%", "heater": "W"}  # fmt: skip

LOGGING_INI = """
[ConsoleLogger]
active = 1
log_level = INFO

[FileLogger]
active = 1
log_path = {logs}
log_basename = demo
log_extension = .jsonl
log_level = DEBUG

[AlarmLogger]
active = 1
host = 127.0.0.1
port = {alarm_port}
log_level = WARNING
"""


class Cryostat:
    """A simulated instrument: eight channels with drift, noise and a slow helium boil-off."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.random = random.Random(42)  # simulated noise, repeatable

    def read(self) -> list[float]:
        """Return one reading of every channel."""
        t = time.monotonic() - self.start
        noise = self.random.gauss
        return [
            4.2 + 0.01 * math.sin(t) + noise(0, 0.002),
            52.0 + 0.5 * math.sin(t / 7) + noise(0, 0.05),
            4.5 + 0.05 * math.sin(t / 3) + noise(0, 0.005),
            4.3 + noise(0, 0.003),
            1e-6 * (1 + 0.1 * math.sin(t)) + abs(noise(0, 1e-8)),
            1e-7 * (1 + 0.1 * math.cos(t)) + abs(noise(0, 1e-9)),
            80.0 - 0.5 * t,
            0.2 + 0.05 * math.sin(t / 2),
        ]


class DaqDaemon(Server):
    """The acquisition daemon: ``start [--rate HZ]``, ``stop``, ``status``, ``quit``."""

    def __init__(self, db: Database, pid_file: Path, spool: Path) -> None:
        super().__init__(pid_file_name=str(pid_file), host="127.0.0.1", port=0)
        self.parser.prog = "daq-daemon"
        self.parser.description = "Cryostat acquisition daemon"
        start = self.sp.add_parser(name="start", description="start acquiring")
        start.add_argument("--rate", type=float, default=200.0, help="readings per second")
        start.set_defaults(func=self.start, which="start")
        self.sp.add_parser(name="stop", description="stop acquiring").set_defaults(
            func=self.stop_acquisition, which="stop"
        )
        self.sp.add_parser(name="status", description="acquisition status").set_defaults(
            func=self.status, which="status"
        )
        self.writer = BufferedWriter(
            db, TABLE, ["time", *CHANNELS], batch_size=1000, flush_interval=0.5, spool_dir=spool
        )
        self.instrument = Cryostat()
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self.readings = 0
        self.acquiring_since: float | None = None
        self.acquired_for = 0.0

    def _acquire(self, rate: float) -> None:
        period = 1.0 / rate
        next_at = time.monotonic()
        while self._running.is_set():
            values = self.instrument.read()
            self.writer.add([dt.datetime.now(dt.timezone.utc), *values])
            self.readings += 1
            if values[6] < 79.0 and self.readings % 250 == 0:
                getLogger().warning("Helium level low: %.1f %%", values[6])
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))

    def start(self) -> None:
        """Start the acquisition thread."""
        if self._running.is_set():
            self.reply = "already acquiring"
            return
        self._running.set()
        self.acquiring_since = time.monotonic()
        self._thread = threading.Thread(
            target=self._acquire, args=(self.namespace.rate,), daemon=True
        )
        self._thread.start()
        getLogger().success("Acquisition started at %.0f Hz", self.namespace.rate)
        self.reply = f"acquiring at {self.namespace.rate:.0f} Hz"

    def stop_acquisition(self) -> None:
        """Stop the acquisition thread and flush the writer."""
        if not self._running.is_set():
            self.reply = "not acquiring"
            return
        self._running.clear()
        if self._thread is not None:
            self._thread.join()
        if self.acquiring_since is not None:
            self.acquired_for += time.monotonic() - self.acquiring_since
            self.acquiring_since = None
        self.writer.flush()
        getLogger().info("Acquisition stopped after %d readings", self.readings)
        self.reply = f"stopped after {self.readings} readings"

    def status(self) -> None:
        """Report the acquisition state."""
        state = "acquiring" if self._running.is_set() else "idle"
        self.reply = (
            f"{state}; readings {self.readings}; written {self.writer.rows_written};"
            f" spooled {self.writer.rows_spooled}"
        )

    def quit(self) -> None:
        """Stop everything; the daemon then exits."""
        if self._running.is_set():
            self.stop_acquisition()
        self.writer.close()
        getLogger().info("Daemon quitting")
        self.reply = "Goodbye!"


def _database(config: str | None) -> tuple[Database, EmbeddedPostgres | None]:
    if config:
        db = Database(config_file=config)
        db.connect()
        return db, None
    server = EmbeddedPostgres().start()
    return server.database("demo"), server


def _table(db: Database) -> None:
    db.create_timescale_db(TABLE)
    for channel in CHANNELS:
        db.new_column(TABLE, channel, DataType.double)


def _port_is_closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to acquire")
    parser.add_argument("--rate", type=float, default=200.0, help="readings per second")
    parser.add_argument(
        "--db-config",
        default=os.environ.get("LAB_DB_CONFIG"),
        help="[Overall] INI of a server to use",
    )
    parser.add_argument(
        "--keep-running", action="store_true", help="leave the daemon up for a person to talk to"
    )
    parser.add_argument(
        "--plot", type=Path, help="where to draw what was acquired (default: in the run's folder)"
    )
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="lab-utils-demo-"))
    alarms = AlarmListener("127.0.0.1", 0, [console_handler()])
    threading.Thread(
        target=alarms.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    ).start()
    ini = work / "logging.ini"
    ini.write_text(LOGGING_INI.format(logs=work / "logs", alarm_port=alarms.port))
    log = configure_logging(str(ini), logger_name="demo")

    began = time.monotonic()
    db, server = _database(args.db_config)
    try:
        _table(db)
        daemon = DaqDaemon(db, work / "daq.pid", work / "spool")
        serving = threading.Thread(target=daemon.start_daemon)
        serving.start()
        while daemon.address is None and serving.is_alive():
            serving.join(0.01)
        port = daemon.address
        client = Client(host="127.0.0.1", port=port, timeout=60)
        log.info("Daemon up on port %s; driving it with a Client", port)
        acquired_from = dt.datetime.now(dt.timezone.utc)
        for command in ("status", f"start --rate {args.rate:g}"):
            log.info("> %s: %s", command, client.send_message(command))
        time.sleep(args.seconds)
        for command in ("stop", "status"):
            log.info("> %s: %s", command, client.send_message(command))
        if args.keep_running:
            print(f"\nThe daemon keeps running on port {port}. Try:\n"
                  f"  python -m lab_utils.socket_comm --port {port} send status\n"
                  f"  python -m lab_utils.socket_comm --port {port} shell\n"
                  "Send 'quit' (or press Ctrl+C) to end.")  # fmt: skip
            try:
                while serving.is_alive():
                    serving.join(0.5)
            except KeyboardInterrupt:
                daemon.stop()
        else:
            log.info("> quit: %s", client.send_message("quit"))
        serving.join(60)

        rows = db.fetch_latest(TABLE, CHANNELS[:4], limit=5)
        written = daemon.writer.rows_written
        rate = written / daemon.acquired_for if daemon.acquired_for else 0.0
        shutdown_logging()
        print("\n== What happened")
        print(
            f"rows written:        {written} ({rate:,.0f} rows/s over {daemon.acquired_for:.1f} s)"
        )
        print(f"rows in the table:   {_rows_in(db)}")
        print(f"alarms received:     {alarms.received}")
        print(
            "database:            "
            + (f"embedded PostgreSQL on port {server.port}" if server else str(args.db_config))
        )
        print(f"log file:            {next((work / 'logs').glob('demo_*.jsonl'))}")
        print("\n== Latest readings")
        print(f"{'time (UTC)':28}" + "".join(f"{c:>12}" for c in CHANNELS[:4]))
        for row in rows:
            print(f"{row[0].astimezone(dt.timezone.utc).isoformat(timespec='milliseconds'):28}"
                  + "".join(f"{v:12.4f}" for v in row[1:]))  # fmt: skip
        lock_free = daemon.lock is None
        print(f"\ndaemon port closed:  {_port_is_closed(port)}; PID lock released: {lock_free}")
        picture = args.plot or work / "cryostat.png"
        print(f"plot:                {_plot(db, acquired_from, rows[0][0], picture)}")
        print(f"finished in {time.monotonic() - began:.1f} s")
    finally:
        db.close()
        if server is not None:
            server.stop()
        alarms.shutdown()
        alarms.server_close()
        shutdown_logging()
    shutil.rmtree(work / "spool", ignore_errors=True)
    return 0


def _plot(db: Database, start: dt.datetime, last: dt.datetime, path: Path) -> str:
    """Draw the acquired channels, one panel per unit; return the file or what is missing."""
    try:
        import matplotlib  # noqa: F401 - the plot extra is optional
    except ImportError:
        return "skipped: pip install 'lab-db[plot]' to get one"
    from lab_utils.database.plot import plot_table, save

    end = last + dt.timedelta(milliseconds=1)
    fig = plot_table(db, TABLE, CHANNELS, start, end, per="unit", units=UNITS, size=(1000, 900))
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(save(fig, path))


def _rows_in(db: Database) -> int:
    start = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    return len(db.fetch_range(TABLE, start, end, []))


if __name__ == "__main__":
    raise SystemExit(main())

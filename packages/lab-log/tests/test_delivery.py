"""One delivery pipeline: each record is frozen once, queued once by the caller, once per sink."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from typing import Any

import pytest

from lab_utils.custom_logging import NonPickledSocketHandler
from lab_utils.custom_logging.alarm import alarm_formatter
from lab_utils.custom_logging.delivery import Dispatcher


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_dispatcher_freezes_a_record_once_for_every_sink(one_shot_listener: Any) -> None:
    local = _Collect()
    alarm = NonPickledSocketHandler("127.0.0.1", one_shot_listener.port)
    alarm.setFormatter(alarm_formatter())
    seen_by_alarm: list[logging.LogRecord] = []
    alarm.addFilter(lambda record: seen_by_alarm.append(record) or True)
    dispatcher = Dispatcher(local=[local], queued=[alarm])
    dispatcher.start()
    logger = logging.getLogger("pipeline-test")
    logger.propagate = False
    logger.addHandler(dispatcher)
    try:
        try:
            raise RuntimeError("valve stuck")
        except RuntimeError:
            logger.exception("reading %d failed", 7)
    finally:
        logger.removeHandler(dispatcher)
        dispatcher.close()
    (written,) = local.records
    (queued,) = seen_by_alarm
    # The very same frozen object reached both sinks: one copy, one queue each.
    assert written is queued
    assert written.args is None and written.exc_info is None
    assert written.msg.startswith("reading 7 failed\nTraceback")
    (message,) = one_shot_listener.messages
    assert message.startswith("{pipeline-test} --date {")
    assert "--message {reading 7 failed\nTraceback" in message
    assert message.count("RuntimeError: valve stuck") == 1


def test_a_caller_record_is_left_as_it_was(one_shot_listener: Any) -> None:
    handler = NonPickledSocketHandler("127.0.0.1", one_shot_listener.port)
    record = logging.makeLogRecord(
        {"name": "cryo", "levelno": 40, "levelname": "ERROR", "msg": "T = %s", "args": ("4 K",)}
    )
    handler.handle(record)
    handler.close()
    assert (record.msg, record.args) == ("T = %s", ("4 K",))
    assert one_shot_listener.messages == ["T = 4 K"]


def test_sinks_below_their_level_get_nothing(one_shot_listener: Any) -> None:
    local = _Collect()
    local.setLevel(logging.ERROR)
    alarm = NonPickledSocketHandler("127.0.0.1", one_shot_listener.port)
    alarm.setLevel(logging.WARNING)
    dispatcher = Dispatcher(local=[local], queued=[alarm])
    dispatcher.start()
    for level in (logging.INFO, logging.WARNING, logging.ERROR):
        dispatcher.handle(
            logging.makeLogRecord({"levelno": level, "levelname": "x", "msg": str(level)})
        )
    dispatcher.close()
    assert [r.msg for r in local.records] == ["40"]
    assert one_shot_listener.messages == ["30", "40"]
    assert alarm.courier.delivered == 2


def test_courier_threads_start_on_first_use_only() -> None:
    before = {t.name for t in threading.enumerate()}
    handler = NonPickledSocketHandler("127.0.0.1", 9)
    assert {t.name for t in threading.enumerate()} == before
    handler.close()


def test_importing_the_package_leaves_the_network_stack_alone() -> None:
    code = (
        "import json, sys; import lab_utils.custom_logging; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('ssl', 'smtplib', 'email', 'urllib', 'http', 'difflib', 'pathlib', 'typing'))))"
    )
    # json itself is imported by this probe; it is checked by the next test.
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


def test_importing_the_package_does_not_import_json() -> None:
    code = "import sys, lab_utils.custom_logging; print('json' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_stack_is_shown_once() -> None:
    local = _Collect()
    local.setFormatter(logging.Formatter("%(message)s"))
    dispatcher = Dispatcher(local=[local])
    dispatcher.start()
    logger = logging.getLogger("stack-test")
    logger.propagate = False
    logger.addHandler(dispatcher)
    try:
        logger.warning("where am I", stack_info=True)
    finally:
        logger.removeHandler(dispatcher)
        dispatcher.close()
    (record,) = local.records
    assert local.format(record).count("Stack (most recent call last)") == 1


def test_the_caller_never_touches_a_network_sinks_queue(one_shot_listener: Any) -> None:
    alarm = NonPickledSocketHandler("127.0.0.1", one_shot_listener.port)
    filtered_in: list[threading.Thread] = []
    alarm.addFilter(lambda record: filtered_in.append(threading.current_thread()) or True)
    # Network sinks only: the dispatcher's thread runs without any local sink.
    dispatcher = Dispatcher(queued=[alarm])
    dispatcher.start()
    for n in range(3):
        dispatcher.handle(logging.makeLogRecord({"levelno": 40, "levelname": "x", "msg": str(n)}))
    dispatcher.close()
    assert one_shot_listener.messages == ["0", "1", "2"]
    assert len(filtered_in) == 3
    assert threading.current_thread() not in filtered_in


def test_a_faulty_filter_is_reported_and_spares_the_other_sinks(
    one_shot_listener: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    local = _Collect()
    broken = NonPickledSocketHandler("127.0.0.1", one_shot_listener.port)

    def explode(record: logging.LogRecord) -> bool:
        raise ValueError("filter bug")

    broken.addFilter(explode)
    alarm = NonPickledSocketHandler("127.0.0.1", one_shot_listener.port)
    dispatcher = Dispatcher(local=[local], queued=[broken, alarm])
    dispatcher.start()
    for n in range(2):
        dispatcher.handle(logging.makeLogRecord({"levelno": 40, "levelname": "x", "msg": str(n)}))
    dispatcher.close()
    assert [r.msg for r in local.records] == ["0", "1"]
    assert one_shot_listener.messages == ["0", "1"]
    assert capsys.readouterr().err.count("ValueError: filter bug") == 2

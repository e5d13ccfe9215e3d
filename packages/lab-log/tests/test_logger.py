"""SUCCESS records and getLogger: the 0.4 names, working on every Python."""

from __future__ import annotations

import logging

import pytest

from lab_utils.custom_logging import SUCCESS, CustomLogger, configure_logging, getLogger


def test_default_logger_has_success_even_named_root(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging(None)
    logger = getLogger()
    assert isinstance(logger, CustomLogger)
    assert logger is not logging.getLogger()
    with caplog.at_level(logging.DEBUG):
        logger.success("all good")
    assert [r.levelname for r in caplog.records if r.getMessage() == "all good"] == ["SUCCESS"]


def test_success_record_names_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(SUCCESS):
        getLogger("caller-test").success("from the test")
    (record,) = [r for r in caplog.records if r.name == "caller-test"]
    assert record.funcName == "test_success_record_names_the_caller"
    assert record.module == "test_logger"


def test_logger_made_before_setup_gains_success(caplog: pytest.LogCaptureFixture) -> None:
    # As a driver imported before configure_logging would have it: a plain Logger.
    current = logging.getLoggerClass()
    logging.setLoggerClass(logging.Logger)
    try:
        plain = logging.getLogger("made.early.by.a.driver")
    finally:
        logging.setLoggerClass(current)
    assert type(plain) is logging.Logger
    with caplog.at_level(SUCCESS):
        getLogger("made.early.by.a.driver").success("works")
    assert any(r.levelno == SUCCESS and r.name == "made.early.by.a.driver" for r in caplog.records)

"""Set up logging from logging.ini next to this file and log at every level."""

import tempfile
from pathlib import Path

from lab_utils.custom_logging import configure_logging, getLogger, shutdown_logging


def main() -> None:
    template = (Path(__file__).parent / "logging.ini").read_text()
    logs = Path(tempfile.mkdtemp(prefix="lab-log-example-"))
    ini = logs / "logging.ini"
    ini.write_text(template.replace("~/logs/lab_utils", str(logs)))
    configure_logging(str(ini), logger_name="example")
    log = getLogger()
    log.debug("only in the file")
    log.info("pump started")
    log.success("cool-down finished")
    log.warning("helium level at 20 %")
    shutdown_logging()
    print("daily file:", next(logs.glob("example_*.log")))


if __name__ == "__main__":
    main()

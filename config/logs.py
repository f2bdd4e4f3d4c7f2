"""Log lines as JSON objects (LOG_FORMAT=json), one a line, for the institution's log platform."""

import json
import logging
from datetime import UTC, datetime

# attributes every LogRecord has; anything else on a record came in through `extra=` and is kept
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """time (UTC, ISO 8601), level, logger, message, process and thread; the traceback as `exception`; fields
    passed with `extra=` as they are (as text when they are not JSON). Python's warnings (e.g. Celery's) become
    log lines too, so that every line on stderr is JSON."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        logging.captureWarnings(True)

    def format(self, record):
        """One line of JSON for the record."""
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "thread": record.threadName,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        return json.dumps(line, ensure_ascii=False, default=str)

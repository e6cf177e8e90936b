"""Logging of ``smartretry serve``: uvicorn's own configuration plus the service's loggers
(``serving.*``, ``training.*`` and the audit log ``smartretry.audit``) at INFO on stderr,
in every worker process (uvicorn applies it in each)."""

from __future__ import annotations

import copy
from typing import Any

from uvicorn.config import LOGGING_CONFIG


def serve_log_config() -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["service"] = {
        "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
    }
    config["handlers"]["service"] = {
        "formatter": "service",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    for name in ("smartretry", "serving", "training"):
        config["loggers"][name] = {"handlers": ["service"], "level": "INFO", "propagate": False}
    return config

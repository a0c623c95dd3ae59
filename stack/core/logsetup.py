"""Logging of a process (ledis-server, ledis-proxy): called by their entry points only."""

from __future__ import annotations

import logging

LEVELS = {
    "debug": logging.DEBUG,
    "verbose": 15,
    "notice": logging.INFO,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure(level: str, logfile: str = "") -> None:
    logging.addLevelName(15, "VERBOSE")
    handler: logging.Handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s: %(message)s",
            datefmt="%Y-%m-%d %H:%M:%S",
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    set_level(level)


def set_level(level: str) -> None:
    logging.getLogger().setLevel(LEVELS.get(level.lower(), logging.INFO))

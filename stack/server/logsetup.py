"""Logging for the ledis-server process: the core's, configured in the entry point only."""

from stack.core.logsetup import LEVELS, configure, set_level

__all__ = ["LEVELS", "configure", "set_level"]

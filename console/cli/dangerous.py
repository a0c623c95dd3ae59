"""Commands that ask before they run, in ledis-cli and in the dashboard's ledis-cli session:
the command's lower-case name -> the sentence that says why."""

from __future__ import annotations

DANGEROUS = {
    "flushall": "This removes every key of every database.",
    "flushdb": "This removes every key of the current database.",
    "shutdown": "This stops the server.",
    "debug": "DEBUG can block or crash the server.",
}

"""File descriptors: clients and the store share one limit (RLIMIT_NOFILE).

As Redis does at start (``adjustOpenFilesLimit``), the server raises its soft limit to what
``maxclients`` needs plus a reserve, as far as the hard limit (or privileges) allow; when that
is not enough, it lowers ``maxclients`` to what fits and says so. The reserve is for the store:
LevelDB's table files (``leveldb_files``, LevelDB's ``max_open_files``), its log, manifest and
lock, a backup being written, the listening socket, logs and standard streams; so a flood of
clients is refused with ``-ERR max number of clients reached`` while LevelDB can still open
what it needs (before, a write failed with "Too many open files").
"""

from __future__ import annotations

import contextlib
import logging
import resource
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Descriptors besides clients and LevelDB's table files (Redis keeps 32; LevelDB's log,
# manifest, lock and info log, a compaction's output and a backup file come on top).
RESERVED = 48
# LevelDB's table cache: at most LevelDB's default, at least enough to work.
LEVELDB_FILES_MAX = 1000
LEVELDB_FILES_MIN = 64


@dataclass(frozen=True)
class Budget:
    """How the descriptors of the process are shared."""

    limit: int  # the soft RLIMIT_NOFILE now in force
    maxclients: int
    leveldb_files: int

    def clients_for(self, limit: int) -> int:
        """The most clients a limit of ``limit`` descriptors leaves room for."""
        return limit - RESERVED - self.leveldb_files


def _try_limit(want: int) -> str | None:
    """Raise the soft limit (and the hard one when that is allowed) to ``want``; None when
    done, else the reason."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft >= want:
        return None
    unlimited = hard == resource.RLIM_INFINITY
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard if unlimited else max(hard, want)))
        return None
    except (ValueError, OSError) as e:
        reason = str(e)
    if not unlimited and hard > soft:  # at least as far as the hard limit
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return reason


def current_limit() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1 << 30 if soft == resource.RLIM_INFINITY else int(soft)


def plan(maxclients: int) -> Budget:
    """Raise the descriptor limit for ``maxclients`` clients where allowed, and share what
    there is; logs what it could not do, as Redis does."""
    want = maxclients + RESERVED + LEVELDB_FILES_MAX
    reason = _try_limit(want)
    limit = current_limit()
    leveldb = max(LEVELDB_FILES_MIN, min(LEVELDB_FILES_MAX, limit - RESERVED - maxclients))
    fits = limit - RESERVED - leveldb
    if fits >= maxclients:
        return Budget(limit, maxclients, leveldb)
    log.warning(
        "You requested maxclients of %d requiring at least %d max file descriptors.",
        maxclients,
        want,
    )
    if reason is not None:
        log.warning(
            "Server can't set maximum open files to %d because of OS error: %s.", want, reason
        )
    if fits < 1:
        raise OSError(
            f"Your current 'ulimit -n' of {limit} is not enough for the server to start. "
            f"Please increase your open file limit to at least "
            f"{RESERVED + LEVELDB_FILES_MIN + 1}."
        )
    log.warning(
        "Current maximum open files is %d. maxclients has been reduced to %d to compensate for "
        "low ulimit. If you need higher maxclients increase 'ulimit -n'.",
        limit,
        fits,
    )
    return Budget(limit, fits, leveldb)


def grow(budget: Budget, maxclients: int) -> Budget:
    """CONFIG SET maxclients: raise the limit for more clients if needed; the new budget, or
    ValueError with Redis's message and the most clients that fit."""
    if maxclients <= budget.clients_for(budget.limit):
        return Budget(budget.limit, maxclients, budget.leveldb_files)
    _try_limit(maxclients + RESERVED + budget.leveldb_files)
    limit = current_limit()
    fits = budget.clients_for(limit)
    if fits < maxclients:
        raise ValueError(
            "The operating system is not able to handle the specified number of clients, "
            f"try with {fits}"
        )
    return Budget(limit, maxclients, budget.leveldb_files)

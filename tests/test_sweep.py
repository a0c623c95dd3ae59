"""Every numeric argument of the command table at the edges, against real Redis in the same run
(the generated sweep of ``tests/sweep.py``; ``python -m tests.sweep --long`` runs more)."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import sweep
from .servers import LedisServer, RedisServer

pytestmark = pytest.mark.differential

RSS_GROWTH = 400 * 1024 * 1024


def test_sweep_covers_the_table() -> None:
    """The generator reaches every command with a numeric argument (but those it skips on
    purpose), and each numeric position of each."""
    from stack.core.commands import TABLE

    swept = {c.spec.name for c in sweep.cases(sweep.EDGES, sweep.VARIANT_EDGES)}
    numeric = {
        s.name for s in TABLE.all_specs()
        if not s.subcommands and any(sweep._has_numeric(a, s.name) for a in s.args)
    }
    assert numeric - sweep.SKIP <= swept
    assert {"hrandfield", "srandmember", "zrandmember", "bitfield", "setrange", "lpos",
            "sort", "zrangestore", "getex", "restore", "scan"} <= swept


@pytest.mark.parametrize("server", ["ledis_server", "ledis_server_python"])
def test_numeric_edges_match_redis(server: str, request: pytest.FixtureRequest,
                                   redis_server: RedisServer, tmp_path: Path) -> None:
    """Each call answers within the deadline (a hang fails here, not the suite), the server's
    memory stays bounded, and every reply (and the type, size and TTL of the keys afterwards)
    is Redis's; where Redis 7.0 itself would loop without bound, ledis refuses."""
    ledis: LedisServer = request.getfixturevalue(server)
    assert ledis.proc is not None
    result = sweep.run(ledis.port, ledis.proc.pid, str(redis_server.socket), deadline=20.0,
                       rss_limit=RSS_GROWTH)
    assert result.hung is None, result.hung
    assert not result.mismatches, "\n".join(result.mismatches[:40])
    assert result.compared > 4000 and result.cases > result.compared
    assert result.max_rss_growth < RSS_GROWTH

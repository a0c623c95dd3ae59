"""Every command called wrongly in every way its argument tree suggests (a keyword misspelled,
an option repeated or two that conflict, a value missing after its keyword, a key count that
disagrees with the keys, too few or too many arguments), against real Redis in the same run:
the generated sweep of ``tests/syntax_sweep.py``."""

from __future__ import annotations

import pytest

from . import syntax_sweep
from .respclient import RawClient
from .servers import LedisServer, RedisServer

pytestmark = pytest.mark.differential


def test_the_sweep_reaches_every_command_and_every_kind_of_mistake() -> None:
    reached = {c.spec.name for c in syntax_sweep.cases()}
    assert {s.name for s in syntax_sweep.specs()} <= reached
    kinds = {c.how for c in syntax_sweep.cases()}
    assert {"misspelled", "repeated", "no-value", "numkeys", "arity", "conflicting",
            "combined", "numkeys, first key of another type"} <= kinds


@pytest.mark.parametrize(("server", "resp"), [("ledis_server", 2), ("ledis_server", 3),
                                              ("ledis_server_python", 2)])
def test_wrong_calls_get_redis_errors(server: str, resp: int, request: pytest.FixtureRequest,
                                      redis_server: RedisServer) -> None:
    """Where either server refuses a call, both refuse it with the same bytes, and a refused
    call changes no key; every answer comes within the deadline."""
    ledis: LedisServer = request.getfixturevalue(server)
    result = syntax_sweep.run(ledis.port, str(redis_server.socket), deadline=20.0, resp=resp)
    assert result.hung is None, result.hung
    assert not result.mismatches, "\n".join(result.mismatches[:40])
    assert result.cases > 3000 and result.errors > 2500


def test_debug_is_one_command_with_its_own_errors(ledis_server: LedisServer,
                                                  redis_server: RedisServer) -> None:
    """DEBUG is not a container in Redis 7.0: a wrong subcommand, or a right one with the
    wrong arguments, gets ``unknown subcommand or wrong number of arguments``."""
    ours, theirs = RawClient(ledis_server.port), RawClient(unix=str(redis_server.socket))
    try:
        for cmd in (("DEBUG", "FOO"), ("DEBUG", "sleep"), ("DEBUG", "SLEEP", "0", "1"),
                    ("DEBUG", "OBJECT"), ("DEBUG",)):
            assert ours.call(*cmd) == theirs.call(*cmd), cmd
    finally:
        ours.close()
        theirs.close()

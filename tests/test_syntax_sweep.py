"""Every command called wrongly in every way its argument tree suggests (a keyword misspelled,
an option repeated or two that conflict, a value missing after its keyword, a key count that
disagrees with the keys, too few or too many arguments), against real Redis in the same run:
the generated sweep of ``tests/syntax_sweep.py``."""

from __future__ import annotations

import pytest

from . import syntax_sweep
from .servers import LedisServer, RedisServer

pytestmark = pytest.mark.differential


def test_the_sweep_reaches_every_command_and_every_kind_of_mistake() -> None:
    reached = {c.spec.name for c in syntax_sweep.cases()}
    assert {s.name for s in syntax_sweep.specs()} <= reached
    kinds = {c.how for c in syntax_sweep.cases()}
    assert {"misspelled", "repeated", "no-value", "numkeys", "arity", "conflicting",
            "combined", "numkeys, first key of another type"} <= kinds


@pytest.mark.parametrize("server", ["ledis_server", "ledis_server_python"])
def test_wrong_calls_get_redis_errors(server: str, request: pytest.FixtureRequest,
                                      redis_server: RedisServer) -> None:
    """Where either server refuses a call, both refuse it with the same bytes, and a refused
    call changes no key; every answer comes within the deadline."""
    ledis: LedisServer = request.getfixturevalue(server)
    result = syntax_sweep.run(ledis.port, str(redis_server.socket), deadline=20.0)
    assert result.hung is None, result.hung
    assert not result.mismatches, "\n".join(result.mismatches[:40])
    assert result.cases > 3000 and result.errors > 2500

"""``ledis-console deploy`` onto three hosts with addresses of their own: network namespaces
on this machine (tests/sshd_kit.py ``NetnsHosts``), each with an sshd on port 22 of its 10.x
address, joined by a bridge.

h1 and h2 are reached through h0 as a jump host. A 3-member etcd (one member per host), two groups whose replicas are on other hosts than
their masters, a proxy and two controllers, with a password. Fresh deploy serves through
the proxy from this namespace; the second run is changed=0 on every host; a config change
rolls (replicas, then masters through a switchover) while a client writes through the proxy,
with 0 errors; stop stops every node on every host.

Opt-in (LEDIS_DEPLOY_NETNS=1): it installs the project on three hosts, which costs about a
minute on a 2-core machine, past the time the default suite gives deploy's tests.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import pytest
import redis

from .sshd_kit import SSHD, NetnsHosts, deploy, deploy_under_writer, kill_deployed

pytestmark = pytest.mark.skipif(
    os.environ.get("LEDIS_DEPLOY_NETNS") != "1"
    or os.geteuid() != 0
    or not SSHD.exists()
    or shutil.which("ip") is None,
    reason="opt-in: LEDIS_DEPLOY_NETNS=1 (needs root, openssh-server and iproute2)",
)


def playbook(tmp: Path, hosts: NetnsHosts) -> str:
    text = f"""
[deploy]
cluster = "netns"
dir = "{tmp}/unused"
known_hosts = "{hosts.known_hosts}"
connections = 8
"""
    for i, (addr, sshd) in enumerate(zip(hosts.addresses, hosts.sshds, strict=True)):
        text += f"""
[hosts.h{i}]
address = "{addr}"
user = "root"
key = "{sshd.client_key}"
dir = "{tmp}/h{i}"
"""
        if i:
            text += 'jump = "h0"\n'  # h1 and h2 through h0, as behind a bastion
    return text + """
[etcd]
members = [
    { host = "h0", client_port = 2379, peer_port = 2380 },
    { host = "h1", client_port = 2379, peer_port = 2380 },
    { host = "h2", client_port = 2379, peer_port = 2380 },
]

[[groups]]
master = { host = "h0", port = 6380 }
replicas = [{ host = "h1", port = 6381 }]

[[groups]]
master = { host = "h1", port = 6380 }
replicas = [{ host = "h2", port = 6381 }]

[[proxies]]
host = "h2"
port = 6400

[[controllers]]
host = "h0"

[[controllers]]
host = "h2"

[server]
appendfsync = "everysec"

[secrets]
requirepass = { env = "LEDIS_TEST_REQUIREPASS" }
"""


def recaps(out: str) -> dict[str, tuple[int, int, int]]:
    found = re.findall(r"^(h\d) +: ok=(\d+) changed=(\d+) failed=(\d+)$", out, re.M)
    return {h: (int(a), int(b), int(c)) for h, a, b, c in found}


@pytest.mark.timeout(1200)
def test_deploy_onto_three_namespaced_hosts(tmp_path: Path) -> None:
    hosts = NetnsHosts(tmp_path / "hosts", 3)
    secret = "pw-" + uuid.uuid4().hex
    env = {"LEDIS_TEST_REQUIREPASS": secret}
    book = tmp_path / "netns.toml"
    try:
        hosts.start()
        book.write_text(playbook(tmp_path, hosts))
        code, out = deploy(env, tmp_path, str(book), "--yes")
        assert code == 0, out
        assert set(recaps(out)) == {"h0", "h1", "h2"}
        assert all(r[2] == 0 and r[1] > 0 for r in recaps(out).values()), out
        proxy = redis.Redis(host=hosts.addresses[2], port=6400, password=secret, socket_timeout=30)
        for i in range(100):
            proxy.set(f"k{i}", i)
        assert [int(v) for v in proxy.mget([f"k{i}" for i in range(100)])] == list(range(100))
        for addr in hosts.addresses[:2]:  # each master, on its own host, holds some
            assert redis.Redis(host=addr, port=6380, password=secret).dbsize() > 0

        code, out = deploy(env, tmp_path, str(book), "--yes")
        assert code == 0, out
        assert recaps(out) == {"h0": (1, 0, 0), "h1": (1, 0, 0), "h2": (1, 0, 0)}, out

        rolling = tmp_path / "rolling.toml"
        rolling.write_text(book.read_text().replace("[server]\n", "[server]\nmaxclients = 5000\n"))
        out = deploy_under_writer(env, tmp_path, rolling, 6400, secret, hosts.addresses[2])
        assert out.count("took over from") == 2, out

        code, out = deploy(env, tmp_path, str(book), "stop", "--yes")
        assert code == 0, out
        assert len(re.findall(r"^h\d \| stop ", out, re.M)) == 10, out
    finally:
        for i in range(3):
            kill_deployed(tmp_path / f"h{i}")
        hosts.stop()

"""The deploy playbook's schema: each mistake is one sentence naming file, key path and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.deploy.playbook import (
    PlaybookError,
    SecretRef,
    check_ports_within,
    load,
    resolve_secret,
)

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK_ENV = {
    "LEDIS_SSH_USER": "root",
    "LEDIS_SSH_PORT": "2222",
    "LEDIS_SSH_KEY": "/keys/id",
    "LEDIS_KNOWN_HOSTS": "/keys/known_hosts",
    "LEDIS_DEPLOY_DIR": "/tmp/ledis-deploy",
    "LEDIS_PORT_BASE": "7100",
}

BASE = """
[deploy]
cluster = "t"
dir = "/opt/ledis"
known_hosts = "kh"

[hosts.a]
address = "127.0.0.1"

[hosts.b]
address = "127.0.0.2"

[etcd]
members = [{ host = "a", client_port = 2379, peer_port = 2380 }]

[[groups]]
master = { host = "a", port = 6380 }
replicas = [{ host = "b", port = 6380 }]

[[proxies]]
host = "b"
port = 6400

[[controllers]]
host = "a"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "book.toml"
    p.write_text(text)
    return p


def error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    p = write(tmp_path, text)
    with pytest.raises(PlaybookError) as e:
        load(p, env or {})
    msg = str(e.value)
    assert msg.startswith(f"{p}: "), msg
    return msg.removeprefix(f"{p}: ")


def test_shipped_playbooks_validate() -> None:
    prod = load(ROOT / "playbooks/prod.toml", {})
    assert len(prod.etcd) == 3
    assert len(prod.proxies) == 2 and len(prod.controllers) == 3
    assert len(prod.hosts) > 3 and all(g.replicas for g in prod.groups)
    assert set(prod.secrets) == {"requirepass"}
    loop = load(ROOT / "playbooks/loopback.toml", LOOPBACK_ENV)
    host = loop.hosts["local"]
    assert (host.address, host.port, host.user, host.key) == ("127.0.0.1", 2222, "root", "/keys/id")
    assert loop.dir == "/tmp/ledis-deploy"
    assert loop.known_hosts == Path("/keys/known_hosts")
    assert check_ports_within(loop, 7100, 100) == []
    moved = load(ROOT / "playbooks/loopback.toml", {**LOOPBACK_ENV, "LEDIS_PORT_BASE": "9000"})
    assert check_ports_within(moved, 9000, 100) == []
    assert check_ports_within(moved, 7100, 100) != []


def test_a_good_playbook(tmp_path: Path) -> None:
    book = load(write(tmp_path, BASE), {})
    assert book.cluster == "t" and book.known_hosts == tmp_path / "kh"
    assert book.addr(book.groups[0].replicas[0]) == "127.0.0.2:6380"
    assert book.etcd_endpoints() == ("127.0.0.1:2379",)
    assert book.rollout.serial == 1 and book.install.source == "checkout"


def test_unknown_replica_host(tmp_path: Path) -> None:
    text = BASE.replace('replicas = [{ host = "b"', 'replicas = [{ host = "db-7"')
    assert error(tmp_path, text) == "groups[0].replicas[0]: host 'db-7' is not in [hosts]"


def test_missing_environment_variable(tmp_path: Path) -> None:
    text = BASE.replace('dir = "/opt/ledis"', 'dir = "${LEDIS_DIR}"')
    assert error(tmp_path, text) == "deploy.dir: environment variable LEDIS_DIR is not set"
    assert load(write(tmp_path, text), {"LEDIS_DIR": "/srv/l"}).dir == "/srv/l"


def test_inline_secret_refused(tmp_path: Path) -> None:
    msg = error(tmp_path, BASE + '\n[secrets]\nrequirepass = "hunter2"\n')
    assert msg.startswith("secrets.requirepass: an inline secret is not allowed")
    assert "hunter2" not in msg


def test_secret_references(tmp_path: Path) -> None:
    book = load(write(tmp_path, BASE + '\n[secrets]\nrequirepass = { env = "PW" }\n'), {})
    assert book.secrets["requirepass"] == SecretRef(env="PW")
    assert resolve_secret(SecretRef(env="PW"), {"PW": "s3"}, tmp_path) == "s3"
    with pytest.raises(PlaybookError, match="PW: not set"):
        resolve_secret(SecretRef(env="PW"), {}, tmp_path)
    (tmp_path / "pw").write_text("from-file\n")
    assert resolve_secret(SecretRef(file="pw"), {}, tmp_path) == "from-file"
    msg = error(tmp_path, BASE + '\n[secrets]\nrequirepass = { env = "A", file = "b" }\n')
    assert msg == 'secrets.requirepass: expected exactly one of env = "NAME" or file = "path"'


def test_port_used_twice_on_one_host(tmp_path: Path) -> None:
    text = BASE.replace('host = "b"\nport = 6400', 'host = "b"\nport = 6380')
    assert error(tmp_path, text) == (
        "proxies[0]: port 6380 on host 'b' is already used by groups[0].replicas[0]"
    )
    # the same port on two hosts is fine: the proxy takes b's 6380 when the replica moves to a
    moved = text.replace('replicas = [{ host = "b", port = 6380 }]',
                         'replicas = [{ host = "a", port = 6381 }]')  # fmt: skip
    book = load(write(tmp_path, moved), {})
    assert (book.proxies[0].host, book.proxies[0].port) == ("b", 6380)
    assert (book.groups[0].master.host, book.groups[0].master.port) == ("a", 6380)


def test_types_and_ranges(tmp_path: Path) -> None:
    assert error(tmp_path, BASE.replace("port = 6400", "port = 70000")) == (
        "proxies[0].port: must be between 1 and 65535, got 70000"
    )
    assert error(tmp_path, BASE.replace("port = 6400", 'port = "x"')) == (
        "proxies[0].port: expected an integer, got 'x'"
    )
    assert error(tmp_path, BASE + "\n[rollout]\nserial = 0\n") == (
        "rollout.serial: must be between 1 and 64, got 0"
    )
    assert error(tmp_path, BASE + "\n[rollout]\nspeed = 3\n").startswith(
        "rollout.speed: unknown key"
    )
    assert error(tmp_path, BASE.replace('dir = "/opt/ledis"', 'dir = "opt"')).startswith(
        "deploy.dir: expected an absolute path"
    )
    assert error(tmp_path, BASE.replace('address = "127.0.0.2"', "address = 5")) == (
        "hosts.b.address: expected a string, got 5"
    )


def test_settings_per_role(tmp_path: Path) -> None:
    book = load(write(tmp_path, BASE + '\n[server]\nappendfsync = "always"\n'), {})
    assert book.settings["server"] == {"appendfsync": "always"}
    assert error(tmp_path, BASE + "\n[server]\nport = 1\n") == (
        "server.port: set by deploy for each node; not a playbook setting"
    )
    assert (
        error(tmp_path, BASE + "\n[proxy]\nflavour = 1\n") == "proxy.flavour: not a proxy setting"
    )
    assert error(tmp_path, BASE + "\n[controller]\nquorum = [1]\n") == (
        "controller.quorum: expected a string, number or boolean, got [1]"
    )


def test_etcd_members(tmp_path: Path) -> None:
    two = BASE.replace(
        'members = [{ host = "a", client_port = 2379, peer_port = 2380 }]',
        'members = [{ host = "a", client_port = 2379, peer_port = 2380 },'
        ' { host = "b", client_port = 2379, peer_port = 2380 }]',
    )
    assert error(tmp_path, two) == "etcd.members: an odd number of members is needed, got 2"
    assert error(tmp_path, BASE.replace("[etcd]\nmembers", "[etcd]\nmember")).startswith(
        "etcd.member: unknown key"
    )


def test_file_problems(tmp_path: Path) -> None:
    assert error(tmp_path, "[deploy\n").startswith("not valid TOML")
    with pytest.raises(PlaybookError, match="no such file"):
        load(tmp_path / "absent.toml", {})
    assert error(tmp_path, BASE.replace("[[groups]]", "[[groupz]]")).startswith(
        "groupz: unknown key"
    )
    assert error(tmp_path, BASE + '\n[hosts.c]\naddress = "1.2.3.4"\njump = "nowhere"\n') == (
        "hosts.c.jump: host 'nowhere' is not in [hosts]"
    )


@pytest.mark.parametrize("bad", ["/", "/opt", "//opt/", "/usr/local", "/var/lib/"])
def test_a_shared_or_short_deploy_dir_is_refused(tmp_path: Path, bad: str) -> None:
    """uninstall deletes what deploy put in the folder: it must be deploy's own."""
    msg = error(tmp_path, BASE.replace('dir = "/opt/ledis"', f'dir = "{bad}"'))
    assert msg.startswith("deploy.dir: ") and "is not a folder of deploy's own" in msg
    host_dir = BASE.replace('address = "127.0.0.2"', f'address = "127.0.0.2"\ndir = "{bad}"')
    assert error(tmp_path, host_dir).startswith("hosts.b.dir: ")
    assert load(write(tmp_path, BASE.replace("/opt/ledis", "/opt/ledis/")), {}).dir == "/opt/ledis"


def test_a_separate_masterauth_is_refused(tmp_path: Path) -> None:
    """Servers share requirepass and replicas authenticate with it: a different masterauth
    would break replication."""
    text = BASE + '\n[secrets]\nrequirepass = { env = "A" }\nmasterauth = { env = "B" }\n'
    assert error(tmp_path, text) == (
        "secrets.masterauth: replicas authenticate to their master with requirepass (every "
        "server has the same one); remove secrets.masterauth"
    )


def test_a_jump_host_cycle_is_refused(tmp_path: Path) -> None:
    text = BASE.replace('address = "127.0.0.1"', 'address = "127.0.0.1"\njump = "c"')
    text += '\n[hosts.c]\naddress = "127.0.0.3"\njump = "d"\n\n[hosts.d]\naddress = "127.0.0.4"\njump = "a"\n'
    assert error(tmp_path, text) == "hosts.a.jump: a cycle of jump hosts: a -> c -> d -> a"
    fine = text.replace('jump = "a"\n', "")
    assert load(write(tmp_path, fine), {}).hosts["a"].jump == "c"


@pytest.mark.parametrize(
    ("table", "setting", "problem"),
    [
        ("server", "appendfsync = 3", "server.appendfsync: "),
        ("server", 'maxmemory = "lots"', "server.maxmemory: "),
        ("proxy", 'backend-connections = "two"', "proxy.backend-connections: "),
        ("proxy", "backend-connections = 0", "proxy.backend-connections: at least 1"),
        ("controller", 'tick = "fast"', "controller.tick: "),
        ("controller", "quorum = 0", "controller.quorum: at least 1"),
    ],
)
def test_setting_values_are_checked_by_each_program(
    tmp_path: Path, table: str, setting: str, problem: str
) -> None:
    msg = error(tmp_path, BASE + f"\n[{table}]\n{setting}\n")
    assert msg.startswith(problem), msg


def test_good_setting_values_pass(tmp_path: Path) -> None:
    text = BASE + (
        '\n[server]\nappendfsync = "always"\nhz = 20\n'
        "\n[proxy]\nbackend-connections = 3\n\n[controller]\ntick = 0.25\nquorum = 1\n"
    )
    book = load(write(tmp_path, text), {})
    assert book.settings["controller"] == {"quorum": 1, "tick": 0.25}

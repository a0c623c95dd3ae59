"""The deploy planner as pure functions: facts + playbook -> operations, case by case."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from console.deploy.facts import (
    Artifact,
    ClusterFacts,
    FactsError,
    GroupFacts,
    HostFacts,
    Installed,
    NodeFacts,
    parse_cluster,
    parse_host,
)
from console.deploy.hostfacts import facts as host_facts
from console.deploy.hostfacts import unit_name
from console.deploy.nodes import NodeFiles, nodes, render, uninstall_script
from console.deploy.plan import (
    ADD_GROUP,
    ADD_NODE,
    CLUSTER_INIT,
    INSTALL,
    RESTART,
    START,
    STOP,
    UPLOAD,
    WRITE,
    PlanError,
    diff,
    plan_deploy,
    plan_stop,
)
from console.deploy.playbook import Playbook, load

BOOK = """
[deploy]
cluster = "t"
dir = "/opt/ledis"
known_hosts = "kh"

[hosts.a]
address = "10.0.0.1"

[hosts.b]
address = "10.0.0.2"

[etcd]
members = [{ host = "a", client_port = 2379, peer_port = 2380 }]

[[groups]]
master = { host = "a", port = 6380 }
replicas = [{ host = "b", port = 6380 }]

[[groups]]
master = { host = "b", port = 6381 }
replicas = [{ host = "a", port = 6381 }]

[[proxies]]
host = "b"
port = 6400

[[controllers]]
host = "a"

[server]
appendfsync = "everysec"
"""
ART = Artifact("0.1.0", "f" * 64, "w.whl", "cp311", "linux_x86_64")
PLATFORM = "linux_x86_64"
SECRETS: dict[str, str] = {}


def book(tmp_path: Path, text: str = BOOK) -> Playbook:
    p = tmp_path / "b.toml"
    p.write_text(text)
    return load(p, {})


def files_of(b: Playbook) -> dict[tuple[str, str], NodeFiles]:
    return {n.key: render(b, n, SECRETS) for n in nodes(b)}


def fresh(b: Playbook) -> dict[str, HostFacts]:
    return {h: HostFacts(h, (3, 11, 2), platform=PLATFORM) for h in b.hosts}


def deployed(b: Playbook, art: Artifact = ART) -> dict[str, HostFacts]:
    """The facts of hosts on which ``b`` was deployed and runs."""
    out = {}
    for h in b.hosts:
        ns = {
            n.name: NodeFacts(sums := render(b, n, SECRETS).checksums(), True, 100, sums)
            for n in nodes(b)
            if n.host == h
        }
        out[h] = HostFacts(h, (3, 11, 2), Installed(art.version, art.wheel_sha256), ns,
                           platform=PLATFORM)  # fmt: skip
    return out


def cluster_of(b: Playbook) -> ClusterFacts:
    groups = tuple(
        GroupFacts(g.id, b.addr(g.master), tuple(b.addr(r) for r in g.replicas)) for g in b.groups
    )
    return ClusterFacts(True, True, groups, 0, "a-controller-1")


def kinds(plan, **kw) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [
        (op.kind, op.node) for op in plan.ops if all(getattr(op, k) == v for k, v in kw.items())
    ]


def test_fresh_hosts(tmp_path: Path) -> None:
    b = book(tmp_path)
    plan = plan_deploy(b, fresh(b), ClusterFacts(), ART, files_of(b))
    assert [op.kind for op in plan.for_host("a")][:2] == [UPLOAD, INSTALL]
    order = [(op.kind, op.node) for op in plan.ops if op.kind in (START, CLUSTER_INIT)]
    assert order == [
        (START, "etcd"),
        (START, "server-6380"),  # a's master of group 1
        (START, "server-6381"),  # b's master of group 2
        (START, "server-6380"),  # b: replica of group 1
        (START, "server-6381"),  # a: replica of group 2
        (CLUSTER_INIT, ""),
        (START, "proxy-6400"),
        (START, "controller-1"),
    ]
    starts = [(op.host, op.node) for op in plan.ops if op.kind == START]
    assert starts[1:5] == [("a", "server-6380"), ("b", "server-6381"), ("b", "server-6380"),
                           ("a", "server-6381")]  # fmt: skip
    writes = {(op.host, op.node) for op in plan.ops if op.kind == WRITE}
    assert writes == {(n.host, n.name) for n in nodes(b)}
    ranks = [op.rank for op in plan.ops]
    assert ranks == sorted(ranks)


def test_nothing_to_do(tmp_path: Path) -> None:
    b = book(tmp_path)
    plan = plan_deploy(b, deployed(b), cluster_of(b), ART, files_of(b))
    assert plan.empty and plan.notes == ()
    assert plan.hosts == ("a", "b")


def test_one_server_setting_changed_restarts_only_servers(tmp_path: Path) -> None:
    b = book(tmp_path)
    facts = deployed(b)
    b2 = book(tmp_path, BOOK.replace('appendfsync = "everysec"', 'appendfsync = "always"'))
    plan = plan_deploy(b2, facts, cluster_of(b2), ART, files_of(b2))
    assert {op.node for op in plan.ops} == {"server-6380", "server-6381"}
    assert {op.kind for op in plan.ops} == {WRITE, RESTART}
    restarts = [(op.host, op.node, op.rank) for op in plan.ops if op.kind == RESTART]
    # replicas (b:6380, a:6381) before masters (a:6380, b:6381)
    assert [(h, n) for h, n, _ in restarts] == [
        ("b", "server-6380"), ("a", "server-6381"), ("a", "server-6380"), ("b", "server-6381"),
    ]  # fmt: skip
    assert all(op.why == "changed: config.toml" for op in plan.ops if op.kind == WRITE)


def test_roles_follow_etcd_after_a_failover(tmp_path: Path) -> None:
    b = book(tmp_path)
    facts = deployed(b)
    swapped = ClusterFacts(
        True, True,
        (GroupFacts(1, "10.0.0.2:6380", ("10.0.0.1:6380",)),
         GroupFacts(2, "10.0.0.2:6381", ("10.0.0.1:6381",))),
        0,
    )  # fmt: skip
    b2 = book(tmp_path, BOOK.replace('appendfsync = "everysec"', 'appendfsync = "always"'))
    plan = plan_deploy(b2, facts, swapped, ART, files_of(b2))
    restarts = [(op.host, op.node) for op in plan.ops if op.kind == RESTART]
    assert restarts[:2] == [("a", "server-6380"), ("a", "server-6381")]  # the replicas now


def test_proxy_setting_changes_only_the_proxy(tmp_path: Path) -> None:
    b = book(tmp_path)
    b2 = book(tmp_path, BOOK + "\n[proxy]\nbackend-connections = 3\n")
    plan = plan_deploy(b2, deployed(b), cluster_of(b2), ART, files_of(b2))
    assert [(op.kind, op.host, op.node) for op in plan.ops] == [
        (WRITE, "b", "proxy-6400"), (RESTART, "b", "proxy-6400"),
    ]  # fmt: skip


def test_a_host_added(tmp_path: Path) -> None:
    b = book(tmp_path)
    facts = deployed(b)
    text = (
        BOOK.replace(
            'replicas = [{ host = "b", port = 6380 }]',
            'replicas = [{ host = "b", port = 6380 }, { host = "c", port = 6380 }]',
        )
        + '\n[hosts.c]\naddress = "10.0.0.3"\n'
    )
    b2 = book(tmp_path, text)
    facts["c"] = HostFacts("c", (3, 11, 9), platform=PLATFORM)
    plan = plan_deploy(b2, facts, cluster_of(b), ART, files_of(b2))
    assert {op.host for op in plan.ops} == {"c", "a"}  # a: etcd's host runs the cluster op
    assert [op.kind for op in plan.for_host("c")] == [UPLOAD, INSTALL, WRITE, START]
    add = [op for op in plan.ops if op.kind == ADD_NODE]
    assert [(op.addr, op.group) for op in add] == [("10.0.0.3:6380", 1)]
    assert plan.ops[-1].kind == ADD_NODE  # after the replica started


def test_a_version_upgrade_restarts_everything_in_order(tmp_path: Path) -> None:
    b = book(tmp_path)
    new = Artifact("0.2.0", "e" * 64, "w2.whl", "cp311", PLATFORM)
    plan = plan_deploy(b, deployed(b), cluster_of(b), new, files_of(b))
    assert [op.kind for op in plan.ops[:4]] == [UPLOAD, INSTALL, UPLOAD, INSTALL]
    assert plan.ops[1].why == "0.1.0 installed, 0.2.0 wanted"
    restarts = [(op.host, op.node) for op in plan.ops if op.kind == RESTART]
    assert len(restarts) == len(nodes(b))
    assert restarts[0] == ("a", "etcd") and restarts[-1] == ("a", "controller-1")
    assert not [op for op in plan.ops if op.kind == WRITE]


def test_old_python_refused(tmp_path: Path) -> None:
    b = book(tmp_path)
    facts = fresh(b) | {"b": HostFacts("b", (3, 9, 2), platform=PLATFORM)}
    with pytest.raises(PlanError, match=r"^b: Python 3.9.2 is older than the 3.11"):
        plan_deploy(b, facts, ClusterFacts(), ART, files_of(b))


def test_limit_and_tags(tmp_path: Path) -> None:
    b = book(tmp_path)
    plan = plan_deploy(b, fresh(b), ClusterFacts(), ART, files_of(b))
    only_b = plan.only("b")
    assert {op.host for op in only_b.ops} == {"b"} and only_b.hosts == ("b",)
    proxies = plan.only(None, ["proxy"])
    assert {op.node for op in proxies.ops} == {"proxy-6400"}


def test_stop_and_uninstall(tmp_path: Path) -> None:
    b = book(tmp_path)
    plan = plan_stop(b, deployed(b))
    assert {op.kind for op in plan.ops} == {STOP}
    assert plan.ops[-1].node == "etcd"
    assert plan.ops[0].role in ("proxy", "controller")
    assert plan_stop(b, fresh(b)).empty
    assert [op.kind for op in plan_stop(b, deployed(b), remove=True).ops][-2:] == ["remove"] * 2


def test_secrets_in_files_and_diff(tmp_path: Path) -> None:
    b = book(tmp_path, BOOK + '\n[secrets]\nrequirepass = { env = "PW" }\n')
    server = next(n for n in nodes(b) if n.role == "server")
    with_pw = render(b, server, {"requirepass": "hunter2"}).files["config.toml"]
    assert 'requirepass = "hunter2"' in with_pw and 'masterauth = "hunter2"' in with_pw
    text = diff("config.toml", with_pw.replace("everysec", "always"), with_pw, ["hunter2"])
    assert "hunter2" not in text and "+appendfsync" in text
    text = diff("config.toml", None, with_pw, ["hunter2"])
    assert "hunter2" not in text and 'requirepass = "<secret>"' in text


def test_facts_parsing(tmp_path: Path) -> None:
    (tmp_path / "nodes" / "etcd").mkdir(parents=True)
    (tmp_path / "nodes" / "etcd" / "node.json").write_text("{}\n")
    (tmp_path / "installed.json").write_text('{"version": "0.1.0", "wheel_sha256": "ab"}')

    f = parse_host("a", "noise\n" + json.dumps(host_facts(str(tmp_path))))
    assert f.installed == Installed("0.1.0", "ab")
    assert f.node("etcd").files["node.json"] == render_sha("{}\n")
    assert not f.node("etcd").running
    c = parse_cluster("a", '{"initialised": true, "groups": [{"id": 1, "master": "x:1", '
                      '"replicas": ["y:2"]}], "unassigned_slots": 0, "leader": null}')  # fmt: skip
    assert c.group_of("y:2") == (c.groups[0], "replica")
    assert (c.reachable, c.initialised, c.unassigned_slots) == (True, True, 0)
    empty = parse_cluster("a", '{"initialised": false, "groups": []}')
    assert (empty.reachable, empty.initialised, empty.groups) == (True, False, ())
    down = parse_cluster("a", '{"ok": true, "error": "etcd: connection refused"}')
    assert (down.reachable, down.error) == (False, "etcd: connection refused")
    with pytest.raises(FactsError, match=r"^a: the cluster facts printed no JSON document"):
        parse_cluster("a", "Traceback (most recent call last):")


def render_sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def test_a_stopped_rollout_restarts_the_rest_next_time(tmp_path: Path) -> None:
    """Files written but the node still runs from the old ones: restarted, not rewritten."""
    b = book(tmp_path)
    b2 = book(tmp_path, BOOK.replace('appendfsync = "everysec"', 'appendfsync = "always"'))
    facts = deployed(b)
    a = facts["a"]
    new = render(b2, next(n for n in nodes(b2) if n.key == ("a", "server-6380")), SECRETS)
    old = a.nodes["server-6380"]
    facts["a"] = replace(a, nodes={**a.nodes, "server-6380": replace(old, files=new.checksums())})
    plan = plan_deploy(b2, facts, cluster_of(b2), ART, files_of(b2))
    mine = [(op.kind, op.why) for op in plan.ops if op.key == ("a", "server-6380")]
    assert mine == [(RESTART, "files changed")]


def test_systemd_unit_runs_the_node_supervisor(tmp_path: Path) -> None:
    from console.deploy.hostd import unit_name, unit_text

    doc = {"cluster": "prod", "name": "server-6380", "role": "server"}
    d = tmp_path / "nodes" / "server-6380"
    text = unit_text(d, doc, "/opt/ledis/venv/bin/python")
    assert unit_name(doc) == "ledis-prod-server-6380.service"
    run = f'"/opt/ledis/venv/bin/python" "-m" "console.deploy.hostd" "run" "{d}"'
    assert f"ExecStart={run}\n" in text
    assert "Restart=on-failure" in text and "WantedBy=multi-user.target" in text


def _systemd_words(line: str) -> list[str]:
    """An ExecStart= value split the way systemd.service's "Command lines" says: words at
    whitespace, double quotes around a word that holds some, C escapes undone inside them,
    then %% as % everywhere and $$ as $ past the first word (specifiers and variables are
    not used here, so any other % or $ fails the test)."""
    words, i = [], 0
    while i < len(line):
        if line[i] == " ":
            i += 1
            continue
        assert line[i] == '"', line[i:]
        word, i = "", i + 1
        while line[i] != '"':
            if line[i] == "\\":
                word += {"n": "\n", "t": "\t", "r": "\r"}.get(line[i + 1], line[i + 1])
                i += 2
            else:
                word += line[i]
                i += 1
        i += 1
        assert "%" not in word.replace("%%", ""), word
        word = word.replace("%%", "%")
        if words:
            assert "$" not in word.replace("$$", ""), word
            word = word.replace("$$", "$")
        words.append(word)
    return words


def test_systemd_unit_quotes_paths_with_spaces_and_specials(tmp_path: Path) -> None:
    """A deploy directory with a space (and %, $, quotes, a backslash) stays one word each."""
    import subprocess

    from console.deploy.hostd import HostdError, exec_line, unit_text

    base = tmp_path / "my deploy 100%"
    venv = base / "venv $HOME" / "bin"
    venv.mkdir(parents=True)
    python = venv / "python"
    python.symlink_to(sys.executable)
    d = base / 'nodes "a" \\ b' / "server-6380"
    text = unit_text(d, {"cluster": "prod", "name": "server-6380", "role": "server"}, str(python))
    line = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    argv = [str(python), "-m", "console.deploy.hostd", "run", str(d)]
    assert _systemd_words(line.removeprefix("ExecStart=")) == argv
    assert f"WorkingDirectory={str(d).replace('%', '%%')}\n" in text
    assert exec_line(["/a b/py", "x\ny"]) == '"/a b/py" "x\\ny"'
    with pytest.raises(HostdError, match="systemd cannot run"):
        exec_line(['/opt/"x"/python', "-V"])
    if shutil.which("systemd-analyze"):  # systemd's own parser finds the executable
        unit = tmp_path / "ledis-prod-server-6380.service"
        unit.write_text(text)
        done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        unit.write_text(text.replace(line, f"ExecStart={python} -m console.deploy.hostd"))
        done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert "is not executable" in done.stderr, done.stderr  # unquoted: split at the space


def test_a_rotated_password_is_masked_by_key_in_the_diff(tmp_path: Path) -> None:
    """The host's files still hold the old password: --diff shows neither old nor new."""
    b = book(tmp_path, BOOK + '\n[secrets]\nrequirepass = { env = "PW" }\n')
    by_role = {n.role: n for n in nodes(b)}
    for role, name in (("server", "config.toml"), ("proxy", "config.toml"),
                       ("controller", "password")):  # fmt: skip
        old = render(b, by_role[role], {"requirepass": "old-pw-1"}).files[name]
        new = render(b, by_role[role], {"requirepass": "new-pw-2"}).files[name]
        text = diff(f"a/{role}/{name}", old, new, ["new-pw-2"])
        assert "old-pw-1" not in text and "new-pw-2" not in text, text
        assert "<secret>" in text or text == ""
    server_old = render(b, by_role["server"], {"requirepass": "old-pw-1"}).files["config.toml"]
    text = diff("config.toml", server_old, server_old.replace("everysec", "always"), [])
    assert "old-pw-1" not in text and "+appendfsync" in text


def _deploy_dir(root: Path, extra: bool) -> Path:
    d = root / "deploy"
    for sub in ("venv/bin", "wheels", "nodes/server-6380"):
        (d / sub).mkdir(parents=True)
    (d / "nodes/server-6380/node.json").write_text("{}")
    (d / "installed.json").write_text("{}")
    if extra:
        (d / "backup.rdb").write_text("not deploy's")
    return d


def test_uninstall_deletes_only_what_deploy_owns(tmp_path: Path) -> None:
    import subprocess

    units = tmp_path / "units"
    units.mkdir()
    for name in ("ledis-prod-server-6380.service", "ledis-prod-eu-server-6380.service"):
        (units / name).write_text("[Unit]\n")
    d = _deploy_dir(tmp_path, extra=True)
    script = uninstall_script(str(d), [unit_name("prod", "server-6380")], str(units), "true")
    subprocess.run(["sh", "-c", script], check=True)
    assert sorted(p.name for p in d.iterdir()) == ["backup.rdb"]  # the rest is not deploy's
    assert sorted(p.name for p in units.iterdir()) == ["ledis-prod-eu-server-6380.service"]
    (d / "backup.rdb").unlink()
    d.rmdir()
    d = _deploy_dir(tmp_path, extra=False)
    subprocess.run(["sh", "-c", uninstall_script(str(d), [], str(units), "true")], check=True)
    assert not d.exists()  # nothing else was in it: the folder goes too
    d = _deploy_dir(tmp_path, extra=False)
    (d / "installed.json").unlink()
    done = subprocess.run(["sh", "-c", uninstall_script(str(d), [], str(units), "true")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 3 and "not a deploy directory" in done.stderr
    assert sorted(p.name for p in d.iterdir()) == ["nodes", "venv", "wheels"]


def test_uninstall_plans_removal_only_where_deploy_installed(tmp_path: Path) -> None:
    b = book(tmp_path)
    facts = deployed(b)
    facts["b"] = replace(facts["b"], installed=None)
    plan = plan_stop(b, facts, remove=True)
    removes = [op for op in plan.ops if op.kind == "remove"]
    assert [(op.host, op.names) for op in removes] == [("a", ("controller-1", "etcd",
                                                               "server-6380", "server-6381"))]  # fmt: skip
    assert plan.notes and plan.notes[0].startswith("b: /opt/ledis has node folders")


def test_stop_with_the_facts_of_one_host_and_a_node_the_playbook_dropped(tmp_path: Path) -> None:
    """``stop --limit b`` gathers b's facts only; b also runs a node no longer in the book."""
    from console.deploy.nodes import dir_of_node

    b = book(tmp_path)
    only_b = {"b": deployed(b)["b"]}
    dropped = NodeFacts({"node.json": "x"}, True, 77, {})
    only_b["b"] = replace(only_b["b"], nodes={**only_b["b"].nodes, "server-7000": dropped})
    plan = plan_stop(b, only_b).only("b")
    assert plan.hosts == ("b",)
    assert [(op.node, op.role) for op in plan.ops] == [
        ("proxy-6400", "proxy"), ("server-6380", "server"), ("server-6381", "server"),
        ("server-7000", "server"),
    ]  # fmt: skip
    assert dir_of_node(b, "b", "server-7000") == "/opt/ledis/nodes/server-7000"


def test_etcd_not_answering_is_not_no_cluster(tmp_path: Path) -> None:
    """A live deployment whose etcd did not answer: no cluster-init, no roles from the book."""
    b = book(tmp_path)
    silent = ClusterFacts(error="a: connection refused")
    with pytest.raises(PlanError, match=r"^etcd did not answer \(a: connection refused\), but "
                       r"a, b have nodes deployed"):  # fmt: skip
        plan_deploy(b, deployed(b), silent, ART, files_of(b))
    facts = deployed(b)
    facts["a"] = replace(facts["a"], nodes={**facts["a"].nodes, "etcd": NodeFacts()})
    plan = plan_deploy(b, facts, silent, ART, files_of(b), need_cluster=False).only(None, ["etcd"])
    assert [(op.kind, op.node) for op in plan.ops] == [(WRITE, "etcd"), (START, "etcd")]
    fresh_plan = plan_deploy(b, fresh(b), silent, ART, files_of(b))  # nothing deployed yet
    assert kinds(fresh_plan, kind=CLUSTER_INIT) == [(CLUSTER_INIT, "")]


def test_a_new_group_with_replicas(tmp_path: Path) -> None:
    """The group's id is etcd's choice at add-group: its replicas join by their master."""
    from console.deploy.hostd import HostdError, group_of
    from stack.cluster.model import Group, SlotMap, Topology

    b = book(tmp_path)
    text = BOOK + (
        '\n[[groups]]\nmaster = { host = "a", port = 6390 }\n'
        'replicas = [{ host = "b", port = 6390 }, { host = "b", port = 6391 }]\n'
    )
    b2 = book(tmp_path, text)
    plan = plan_deploy(b2, deployed(b), cluster_of(b), ART, files_of(b2))
    cluster_ops = [(op.kind, op.addr, op.group, op.master) for op in plan.ops
                   if op.kind in (ADD_GROUP, ADD_NODE)]  # fmt: skip
    assert cluster_ops == [
        (ADD_GROUP, "10.0.0.1:6390", 3, ""),
        (ADD_NODE, "10.0.0.2:6390", 0, "10.0.0.1:6390"),
        (ADD_NODE, "10.0.0.2:6391", 0, "10.0.0.1:6390"),
    ]
    # what hostd add-node does with them once add-group gave the group id 7
    groups = {1: Group(1, "10.0.0.1:6380"), 7: Group(7, "10.0.0.1:6390")}
    topo = Topology("t", 1, None, 1, groups, SlotMap.empty(1))
    assert group_of(topo, {"group": 0, "master": "10.0.0.1:6390"}).id == 7
    assert group_of(topo, {"group": 1, "master": ""}).id == 1
    with pytest.raises(HostdError, match=r"no group in etcd holds '10\.9\.9\.9:1'"):
        group_of(topo, {"group": 0, "master": "10.9.9.9:1"})


def test_staged_upload_is_checked_by_sha256_before_the_copy(tmp_path: Path) -> None:
    """sudo uploads: exactly the files sent, and only if their sha256 is what was sent."""
    import hashlib
    import subprocess

    from console.deploy.ssh import parse_hashes, remote_hashes_command, staged_copy_script

    stage, target = tmp_path / "stage", tmp_path / "wheels"
    stage.mkdir()
    sent = {"a-1.0-py3-none-any.whl": b"one", "b-2.0-py3-none-any.whl": b"two"}
    for name, data in sent.items():
        (stage / name).write_bytes(data)
    (stage / "planted-9.9-py3-none-any.whl").write_bytes(b"not sent")
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in sent.items()}
    subprocess.run(["sh", "-c", staged_copy_script(str(stage), str(target), sums)], check=True)
    assert sorted(p.name for p in target.iterdir()) == sorted(sent)  # not the planted one
    assert not stage.exists()
    listed = subprocess.run(["sh", "-c", remote_hashes_command(str(target))],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert parse_hashes(listed) == sums
    # a staged file changed after it was sent: nothing is copied
    stage.mkdir()
    (stage / "a-1.0-py3-none-any.whl").write_bytes(b"0ne")
    other = tmp_path / "other"
    done = subprocess.run(["sh", "-c", staged_copy_script(str(stage), str(other),
                          {"a-1.0-py3-none-any.whl": sums["a-1.0-py3-none-any.whl"]})],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode != 0 and not other.exists()
    assert parse_hashes(subprocess.run(["sh", "-c", remote_hashes_command(str(other))],
                        capture_output=True, text=True).stdout) == {}  # fmt: skip


def test_a_host_the_wheelhouse_was_not_built_for_is_refused(tmp_path: Path) -> None:
    b = book(tmp_path)
    for other, problem in (
        (HostFacts("b", (3, 12, 0), platform=PLATFORM),
         "b: cpython 3.12.0 (cp312), but the wheelhouse is built for cp311"),
        (HostFacts("b", (3, 11, 2), platform="linux_aarch64"),
         "b: platform linux_aarch64, but the wheelhouse is built for linux_x86_64"),
        (HostFacts("b", (3, 11, 2), implementation="pypy", platform=PLATFORM),
         "b: pypy 3.11.2 (no CPython tag), but the wheelhouse is built for cp311"),
    ):  # fmt: skip
        with pytest.raises(PlanError) as e:
            plan_deploy(b, fresh(b) | {"b": other}, ClusterFacts(), ART, files_of(b))
        assert str(e.value).startswith(problem), e.value
    pure = Artifact("0.1.0", "f" * 64, "w.whl")  # only pure wheels, or a package index
    facts = fresh(b) | {"b": HostFacts("b", (3, 12, 0), platform="linux_aarch64")}
    assert not plan_deploy(b, facts, ClusterFacts(), pure, files_of(b)).empty


def test_the_wheelhouse_records_its_tags(tmp_path: Path) -> None:
    """A compiled wheel in the wheelhouse: the artifact names this Python and platform."""
    import sys

    from console.deploy.artifact import _found
    from console.deploy.hostfacts import platform_tag

    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    (tmp_path / f"ledis_console-0.1.0-{tag}-{tag}-{platform_tag()}.whl").write_bytes(b"w")
    (tmp_path / "redis-5.0-py3-none-any.whl").write_bytes(b"r")
    found = _found(tmp_path, 0.0)
    assert found is not None
    assert (found.artifact.python_tag, found.artifact.platform) == (tag, platform_tag())
    here = parse_host("h", json.dumps(host_facts(str(tmp_path))))
    assert found.artifact.refuses(here) == ""

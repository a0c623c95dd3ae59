"""``ledis-console deploy`` against a real sshd on loopback (tests/sshd_kit.py).

One scenario on one deployed cluster (deploying is the expensive part, so the cases share
it; they run in order in one test so that pytest-xdist cannot split them): a wrong or
unknown host key is refused before anything runs; a fresh deploy of playbooks/loopback.toml
(plus a requirepass by reference) gives a cluster that serves through its proxy; a second
run reports changed=0 and touches no process or file; a config change rolls (replicas, then
masters through a planned switchover) while a client writes through the proxy, with 0
errors; a failed health gate stops the rollout with the rest left serving; the secret never
appears in output, event log, node logs or command lines; status shows roles from etcd and
drift; stop stops everything; uninstall removes it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import pytest
import redis

from .ports import free_block
from .sshd_kit import SSHD, Sshd, deploy, deploy_under_writer, keygen, kill_deployed

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = ROOT / "playbooks" / "loopback.toml"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not SSHD.exists() or shutil.which("ssh-keygen") is None,
    reason="needs root and openssh-server (scripts/setup.sh installs it)",
)


def recap(out: str) -> tuple[int, int, int]:
    m = re.search(r"^local +: ok=(\d+) changed=(\d+) failed=(\d+)$", out, re.M)
    assert m is not None, out
    return int(m[1]), int(m[2]), int(m[3])


def processes(deploy_dir: Path) -> dict[str, tuple[str, str]]:
    """node -> (supervisor pid, process pid) as their pid files say."""
    out = {}
    for d in sorted((deploy_dir / "nodes").iterdir()):
        hostd = d / "hostd.pid"
        pid = d / "pid"
        out[d.name] = (
            hostd.read_text().strip() if hostd.exists() else "",
            pid.read_text().strip() if pid.exists() else "",
        )
    return out


def mtimes(deploy_dir: Path) -> dict[str, int]:
    return {
        str(p): p.stat().st_mtime_ns
        for p in [*deploy_dir.glob("nodes/*/*.toml"), *deploy_dir.glob("nodes/*/*.json"),
                  deploy_dir / "installed.json"]
    }  # fmt: skip


@pytest.mark.timeout(900)
def test_deploy_on_loopback(tmp_path: Path) -> None:
    sshd = Sshd(tmp_path / "ssh").start()
    base = free_block(100)
    deploy_dir = tmp_path / "deploy"
    secret = "pw-" + uuid.uuid4().hex
    env = sshd.env(deploy_dir, base) | {"LEDIS_TEST_REQUIREPASS": secret}
    book = tmp_path / "loopback.toml"
    book.write_text(
        LOOPBACK.read_text() + '\n[secrets]\nrequirepass = { env = "LEDIS_TEST_REQUIREPASS" }\n'
    )
    outputs: list[str] = []
    try:
        # -- a wrong or unknown host key: refused before anything runs
        other = keygen(tmp_path / "other_host_key")
        wrong = tmp_path / "wrong_known_hosts"
        wrong.write_text(f"[127.0.0.1]:{sshd.port} {other}\n")
        unknown = tmp_path / "empty_known_hosts"
        unknown.write_text("")
        for known in (wrong, unknown):
            code, out = deploy(
                env | {"LEDIS_KNOWN_HOSTS": str(known)}, tmp_path, str(book), "--yes"
            )
            outputs.append(out)
            assert code == 1, out
            assert "host key not verified" in out and "Nothing was run" in out, out
            assert "Traceback" not in out
        assert not deploy_dir.exists()
        assert unknown.read_text() == ""  # never added

        # -- fresh deploy: a cluster that serves through its proxy
        started = time.monotonic()
        code, out = deploy(env, tmp_path, str(book), "--yes")
        outputs.append(out)
        fresh_s = time.monotonic() - started
        assert code == 0, out
        assert recap(out) == (18, 17, 0)
        proxy = redis.Redis(port=base + 50, password=secret, socket_timeout=30)
        keys = [f"k{i}" for i in range(200)]
        for k in keys:
            proxy.set(k, k.upper())
        assert [v.decode() for v in proxy.mget(keys)] == [k.upper() for k in keys]
        masters = [redis.Redis(port=base + p, password=secret) for p in (10, 20)]
        assert all(m.dbsize() > 0 for m in masters)  # both groups hold some
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=base + 50).get("k1")
        print(f"fresh deploy: {fresh_s:.1f} s")

        # -- a second run: changed=0, no process restarted, no file written
        before, files_before = processes(deploy_dir), mtimes(deploy_dir)
        code, out = deploy(env, tmp_path, str(book), "--yes")
        outputs.append(out)
        assert code == 0, out
        assert recap(out) == (1, 0, 0)
        assert "nothing to do" in out
        assert processes(deploy_dir) == before
        assert mtimes(deploy_dir) == files_before

        # -- a config change rolls while a client writes through the proxy: 0 errors
        rolling = tmp_path / "rolling.toml"
        rolling.write_text(book.read_text().replace("[server]\n", "[server]\nmaxclients = 5000\n"))
        code, out = deploy(env, tmp_path, str(rolling), "--check", "--diff")
        outputs.append(out)
        assert code == 0 and "+maxclients = 5000" in out, out
        assert processes(deploy_dir) == before
        out = deploy_under_writer(env, tmp_path, rolling, base + 50, secret)
        outputs.append(out)
        assert recap(out) == (9, 8, 0)  # 4 servers: write + restart each
        after = processes(deploy_dir)
        servers = {n for n in after if n.startswith("server-")}
        assert all(after[n] != before[n] for n in servers)
        assert all(after[n] == before[n] for n in after if n not in servers)
        order = re.findall(r"^local \| restart (server-\d+)", out, re.M)
        assert order == [f"server-{base + p}" for p in (11, 21, 10, 20)], out
        assert out.count("took over from") == 2, out  # both masters handed over first

        # -- a failed health gate stops the rollout; what ran is left serving
        # (a valid setting that breaks at run time: replicas log in to their master as an ACL
        # user that does not exist, so the first replica's link never comes up)
        broken = tmp_path / "broken.toml"
        broken.write_text(rolling.read_text().replace("[server]\n", '[server]\nmasteruser = "nobody"\n')
                          .replace("health_timeout = 60.0", "health_timeout = 8.0"))  # fmt: skip
        before = processes(deploy_dir)
        code, out = deploy(env, tmp_path, str(broken), "--yes")
        outputs.append(out)
        assert code == 2, out
        assert "rollout stopped" in out and "run deploy again" in out, out
        assert recap(out)[2] == 1
        failed = re.findall(r"^local \| restart (server-\d+).*FAILED: health gate", out, re.M)
        assert len(failed) == 1, out  # the first replica (roles moved in the rollout above)
        now = processes(deploy_dir)
        assert all(now[n] == before[n] for n in now if n != failed[0])
        assert proxy.get("k1") == b"K1" and proxy.set("after-failure", 1)
        code, out = deploy(env, tmp_path, str(rolling), "--yes")  # repaired
        outputs.append(out)
        assert code == 0, out
        # only the node that failed its gate restarts (it runs, from the broken files)
        assert re.findall(r"^local \| (?:re)?start (server-\d+)", out, re.M) == failed, out
        assert proxy.get("after-failure") == b"1"
        code, out = deploy(env, tmp_path, str(rolling), "status")
        assert code == 0 and "no drift" in out, out
        assert re.search(rf"server-{base + 11}\W+g1 master", out), out  # roles from etcd
        code, out = deploy(env, tmp_path, str(book), "status")  # drift from another playbook
        assert "4 nodes differ from the playbook" in out, out

        # -- the secret never appears in output, event log, node logs or command lines
        assert all(secret not in o for o in outputs)
        events = (tmp_path / "ledis-deploy-loopback.events.jsonl").read_text()
        kinds = {json.loads(line)["event"] for line in events.splitlines()}
        assert {"begin", "facts", "plan", "op-ok", "op-failed", "recap", "stopped"} <= kinds
        assert secret not in events
        for log in deploy_dir.glob("nodes/*/*.log"):
            assert secret not in log.read_text(errors="replace"), log
        for _, pid in processes(deploy_dir).values():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            assert secret not in cmdline
        for conf in deploy_dir.glob("nodes/*/config.toml"):
            assert conf.stat().st_mode & 0o777 == 0o600

        # -- stop: every node stops, clients of the rest first, etcd last
        code, out = deploy(env, tmp_path, str(book), "stop", "--yes")
        assert code == 0, out
        stops = re.findall(r"^local \| stop ([\w-]+)", out, re.M)
        assert len(stops) == 7 and stops[-1] == "etcd", out
        assert not any(pid for pid, _ in processes(deploy_dir).values())
        code, out = deploy(env, tmp_path, str(book), "uninstall", "--yes")
        assert code == 0 and recap(out) == (2, 1, 0), out
        assert not deploy_dir.exists()
    finally:
        kill_deployed(deploy_dir)
        sshd.stop()

"""Run inside a fresh network namespace (``unshare --net``): a peer that is not loopback.

Adds 198.18.0.1 (a benchmarking-test address, in this namespace only) to its loopback device,
starts ledis-server and redis-server bound to every address of the namespace with no password,
and prints as JSON what a client at 198.18.0.1 and one at 127.0.0.1 receive from each, and
ledis-server's log. Nothing leaves the namespace, which ends with this process.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

PEER = "198.18.0.1"


def ask(src: str, port: int, data: bytes) -> tuple[str, bool]:
    c = socket.socket()
    c.bind((src, 0))
    c.settimeout(10)
    c.connect((PEER if src == PEER else "127.0.0.1", port))
    out, closed = b"", False
    try:
        if data:  # (a refused peer sends nothing: unread input would turn the close into RST)
            c.sendall(data)
        while True:
            chunk = c.recv(65536)
            if not chunk:
                closed = True
                break
            out += chunk
            if out.endswith(b"\r\n") and not out.startswith(b"-DENIED"):
                break
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    except TimeoutError:
        pass
    c.close()
    return out.decode("latin-1"), closed


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def main(workdir: Path) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{PEER}/32", "dev", "lo"], check=True)
    ready = workdir / "ready"
    log = workdir / "ledis.log"
    with log.open("wb") as out:
        ledis = subprocess.Popen(
            [sys.executable, "-m", "stack.server.main", "--port", "0", "--bind", "0.0.0.0",
             "--data-dir", str(workdir / "data"), "--ready-file", str(ready)],
            stdout=out, stderr=subprocess.STDOUT,
        )
    redis = subprocess.Popen(
        ["redis-server", "--port", "6379", "--save", "", "--appendonly", "no", "--dir",
         str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (ready.exists() and ready.read_text().strip()):
            if ledis.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ledis-server did not start: " + log.read_text())
            time.sleep(0.05)
        port = int(ready.read_text())
        wait_port(6379, redis)
        result = {
            "ledis_remote": ask(PEER, port, b""),
            "ledis_local": ask("127.0.0.1", port, b"PING\r\n"),
            "redis_remote": ask(PEER, 6379, b""),
            "redis_local": ask("127.0.0.1", 6379, b"PING\r\n"),
        }
    finally:
        for proc in (ledis, redis):
            proc.terminate()
            proc.wait(30)
    result["ledis_log"] = log.read_text(errors="replace")
    print(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]))

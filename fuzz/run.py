"""The long fuzzing run: ``python -m fuzz.run --minutes 30``.

The time is shared out: the coverage-guided targets (atheris, one at a time, restarted after
each crash so one finding does not end the run), then the socket fuzzer against a live
ledis-server started for it, and the same traffic through ledis-proxy in front of a local
cluster of two groups (``ledis-console up``, ports from ``--port-base``). Prints per part and in all: inputs tried, crashes, hangs and max
RSS, and every distinct finding with the file holding its input.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .proxy_fuzz import ProxyFuzzer
from .seeds import write as write_seeds
from .socket_fuzz import Report, SocketFuzzer

# Share of the time per part.
SHARES = {"resp": 0.2, "dump": 0.1, "commands": 0.25, "socket": 0.3, "proxy": 0.15}
HANG_MARK = "no answer within"


@dataclass
class Part:
    name: str
    inputs: int = 0
    crashes: int = 0
    hangs: int = 0
    max_rss_mb: int = 0
    findings: dict[str, str] = field(default_factory=dict)  # first line -> input file

    def line(self) -> str:
        return (
            f"{self.name:9} {self.inputs:>10} inputs  {self.crashes:>3} crashes  "
            f"{self.hangs:>3} hangs  max RSS {self.max_rss_mb} MiB"
        )


def fuzz_target(name: str, seconds: float, work: Path, seeds: Path) -> Part:
    """Run one atheris target for ``seconds``, restarting it after each crash."""
    part = Part(name)
    corpus = work / f"corpus-{name}"
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts = work / f"artifacts-{name}"
    artifacts.mkdir(exist_ok=True)
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 2:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "fuzz.atheris_main",
                name,
                str(corpus),
                str(seeds / name),
                f"-max_total_time={int(left)}",
                "-timeout=0",
                "-rss_limit_mb=3072",
                "-max_len=4096",
                f"-artifact_prefix={artifacts}/",
                "-print_final_stats=1",
            ],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=left + 120,
        )
        out = proc.stderr
        attempt = len(list(work.glob(f"{name}-*.log")))
        (work / f"{name}-{attempt}.log").write_text(out)  # kept: why a run stopped
        runs = [int(n) for n in re.findall(r"^#(\d+)", out, re.M)]
        done = re.search(r"stat::number_of_executed_units: (\d+)", out)
        part.inputs += int(done.group(1)) if done else (max(runs) if runs else 0)
        for mb in re.findall(r"rss: (\d+)Mb", out):
            part.max_rss_mb = max(part.max_rss_mb, int(mb))
        if proc.returncode == 0:
            break
        what = _crash_line(out)
        part.crashes += 1
        if HANG_MARK in what or "libFuzzer: timeout" in what:  # (out-of-memory is a crash)
            part.hangs += 1
        saved = re.search(r"Test unit written to (\S+)", out)
        part.findings.setdefault(what, saved.group(1) if saved else "")
    return part


def _crash_line(out: str) -> str:
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if "Uncaught Python exception" in line:
            for follow in lines[i + 1 :]:
                if follow and not follow.startswith(("Traceback", "  ")):
                    return follow.strip()[:300]
        if "ERROR: libFuzzer:" in line:
            return line.strip()[:300]
    return (lines[-1] if lines else "exit without output")[:300]


def fuzz_socket(seconds: float, work: Path, seed: int) -> Part:
    part = Part("socket")
    ready = work / "ready"
    work.mkdir(parents=True, exist_ok=True)
    log = (work / "server.log").open("ab")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stack.server.main",
            "--port",
            "0",
            "--data-dir",
            str(work / "data"),
            "--ready-file",
            str(ready),
            "--enable-debug-command",
            "yes",
            "--maxclients",
            "200",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not (ready.exists() and ready.read_text().strip()):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ledis-server did not start; see " + str(work / "server.log"))
            time.sleep(0.05)
        fuzzer = SocketFuzzer(int(ready.read_text()), server.pid, seed=seed)
        report = fuzzer.run(seconds)
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:  # stuck in a command: reported as a finding
                server.kill()
                server.wait()
                part.findings["server did not stop within 60 s of SIGTERM"] = ""
        log.close()
    _count(part, report, [work / "server.log"])
    return part


def _count(part: Part, report: Report, logs: list[Path]) -> None:
    """A fuzzer's report into ``part``, with what the processes' logs say went wrong."""
    part.inputs, part.crashes, part.hangs = report.inputs, report.crashes, report.hangs
    part.max_rss_mb = report.max_rss // 2**20
    for finding in report.findings:
        part.findings.setdefault(finding, "")
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if "Traceback" in line or (" failed" in line and "ERROR" in line):
                part.findings.setdefault(f"{log.parent.name} log: {line[:200]}", str(log))


def fuzz_proxy(seconds: float, work: Path, seed: int, port_base: int) -> Part:
    """The socket fuzzer through ledis-proxy, in front of two groups of one master each."""
    part = Part("proxy")
    run_dir = work / "cluster"
    console = [sys.executable, "-m", "console.main"]
    up = [*console, "up", "--run-dir", str(run_dir), "--groups", "2", "--replicas", "0",
          "--controllers", "0", "--port-base", str(port_base), "--detach"]  # fmt: skip
    started = subprocess.run(up, capture_output=True, text=True, timeout=300)
    if started.returncode != 0:
        raise RuntimeError(f"ledis-console up: {started.stderr.strip()[-300:]}")
    try:
        pids = {p.parent.name: int(p.read_text()) for p in run_dir.glob("*/pid")}
        port = int((run_dir / "proxy1" / "ready").read_text())
        backends = [pid for name, pid in pids.items() if name.endswith("-master")]
        report = ProxyFuzzer(port, pids["proxy1"], backends, seed=seed).run(seconds)
    finally:
        subprocess.run([*console, "down", "--run-dir", str(run_dir)], capture_output=True,
                       timeout=120)  # fmt: skip
    _count(part, report, sorted(run_dir.glob("*/*.log")))
    return part


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument(
        "--parts", default=",".join(SHARES), help="comma-separated: " + ",".join(SHARES)
    )
    ap.add_argument("--work", help="keep corpora, artifacts and logs here (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--skip",
        default=os.environ.get("LEDIS_FUZZ_SKIP", ""),
        help="commands to leave out, comma-separated (known findings still open)",
    )
    ap.add_argument(
        "--port-base", type=int, default=7900,
        help="the proxy part's local cluster listens from here (a dozen ports; default 7900)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    total = sum(SHARES[p] for p in parts)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="ledis-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    seeds = work / "seeds"
    write_seeds(seeds)
    have_atheris = shutil.which(sys.executable) is not None and _has_atheris()
    results: list[Part] = []
    started = time.monotonic()
    if args.skip:
        os.environ["LEDIS_FUZZ_SKIP"] = args.skip  # read by the targets and the socket fuzzer
        print(f"fuzz: leaving out {args.skip}", flush=True)
    for name in parts:
        seconds = args.minutes * 60 * SHARES[name] / total
        print(f"fuzz: {name} for {seconds:.0f}s", flush=True)
        try:
            if name == "socket":
                results.append(fuzz_socket(seconds, work / "socket", args.seed))
            elif name == "proxy":
                results.append(fuzz_proxy(seconds, work / "proxy", args.seed, args.port_base))
            elif have_atheris:
                results.append(fuzz_target(name, seconds, work, seeds))
            else:
                from .mutator import fuzz

                results.append(fuzz(name, seconds, seeds / name, args.seed))
        except Exception as e:  # the harness itself failed: say so and go on with the rest
            failed = Part(name)
            failed.findings[f"harness error: {e!r}"[:300]] = ""
            results.append(failed)
        print("  " + results[-1].line(), flush=True)
    print(f"\nfuzz: {(time.monotonic() - started) / 60:.1f} minutes, work in {work}")
    for part in results:
        print(part.line())
    print(
        f"{'all':9} {sum(p.inputs for p in results):>10} inputs  "
        f"{sum(p.crashes for p in results):>3} crashes  {sum(p.hangs for p in results):>3} hangs  "
        f"max RSS {max((p.max_rss_mb for p in results), default=0)} MiB"
    )
    findings = [(p.name, what, where) for p in results for what, where in p.findings.items()]
    for name, what, where in findings[:30]:
        print(f"finding [{name}] {what[:600]}" + (f"  (input: {where})" if where else ""))
    if len(findings) > 30:
        print(f"... and {len(findings) - 30} more findings")
    return 1 if findings else 0


def _has_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())

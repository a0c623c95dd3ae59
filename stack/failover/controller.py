"""The controller's loop: one snapshot per tick, ``decide``, act, one sentence per decision.

Every controller probes the nodes and reports its view (``views/controller:<id>``); the one
holding the leader key acts. Acting on a failover runs its workflow (``workflow.py``) step by
step, each step recorded in etcd before the next one starts, every record change guarded by
the leader key's revision, so a controller that lost leadership cannot write a step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from stack.cluster.model import ModelError, Topology
from stack.cluster.nodemap import push_maps
from stack.cluster.store import Conflict, Store, StoreError, build_topology
from stack.cluster.txn import EventDraft, Guard, Write
from stack.cluster.views import CONTROLLER, Sightings, View, read_views
from stack.core.resp_session import ClientError

from . import probe
from .config import FailoverConfig
from .decide import (
    Action,
    MarkEpoch,
    Rejoin,
    Resume,
    Say,
    Settings,
    Snapshot,
    StartFailover,
    cut_off,
    decide,
)
from .leader import Leadership
from .migrations import OWNER_PREFIX, MigrationHost
from .probe import NodeLook
from .workflow import CHOSEN, COMMITTED, PROMOTED, REQUESTED, Workflow

log = logging.getLogger(__name__)

SOURCE = "ledis-failover"
REPEAT_AFTER = 60.0  # the same sentence is said again only after this many seconds


class StepFailed(Exception):
    """A workflow step could not be done now; the workflow stays where it is."""


class Controller:
    def __init__(self, config: FailoverConfig) -> None:
        self.config = config
        self.ident = config.ident
        self.observer = f"{CONTROLLER}:{self.ident}"
        self.store = Store(list(config.etcd), config.cluster, timeout=config.etcd_timeout)
        self.paths = self.store.paths
        self.leadership = Leadership(self.store, self.ident, config.lease_ttl)
        self.settings = Settings(
            down_after=config.down_after,
            quorum=config.quorum,
            view_max_age=config.view_max_age,
            safe_mode_fraction=config.safe_mode_fraction,
        )
        self.sightings = Sightings()
        self.last_log_ids: dict[str, int] = {}
        self.said: dict[str, str] = {}  # Say key -> the last text said
        self.recent: dict[str, float] = {}  # sentence -> when it was last said
        self.leading = False
        self.cut: str | None = None  # why this controller is cut from the nodes (cut_off)
        self.ticks = 0
        self.migrations = MigrationHost(
            self.store, OWNER_PREFIX + self.ident, config.password or None, self.say
        )
        self._stop = asyncio.Event()
        self._own = View(self.observer, CONTROLLER, 0.0)

    # -- plumbing ----------------------------------------------------------------------------

    async def etcd(self, fn, *args, **kw):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kw))

    async def node(self, addr: str, *args: str | int, timeout: float = 0.0) -> object:
        c = self.config
        return await probe.command(
            addr, c.dial(addr), timeout or c.probe_timeout, c.password or None, *args
        )

    async def say(self, text: str, kind: str = "failover") -> None:
        """One sentence into the log and the events stream (not twice within a minute)."""
        if not text:
            return
        now = time.monotonic()
        if now - self.recent.get(text, -REPEAT_AFTER) < REPEAT_AFTER:
            log.debug("%s", text)
            return
        self.recent = {t: w for t, w in self.recent.items() if now - w < REPEAT_AFTER}
        self.recent[text] = now
        log.warning("%s", text)
        try:
            await self.etcd(self.store.append_event, SOURCE, kind, text)
        except StoreError as e:
            log.warning("cannot record the event: %s", e)

    def request_stop(self) -> None:
        self._stop.set()

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        log.info("ledis-failover %s watching cluster %r (etcd %s)", self.ident,
                 self.config.cluster, ",".join(self.config.etcd))  # fmt: skip
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    await self.tick()
                except StoreError as e:
                    log.warning("etcd: %s; trying again next tick", e)
                except ModelError as e:
                    log.error("the topology cannot be read: %s; not acting", e)
                except Exception:
                    log.exception("tick failed")
                if self.ticks == 1 and self.config.ready_file:
                    ready = Path(self.config.ready_file)
                    ready.parent.mkdir(parents=True, exist_ok=True)
                    tmp = ready.with_name(ready.name + ".tmp")
                    tmp.write_text(f"{self.ident}\n")
                    os.replace(tmp, ready)
                pause = self.config.tick - (time.monotonic() - started)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), max(0.01, pause))
        finally:
            self.migrations.stop()
            await self.etcd(self.leadership.resign)
            self.store.close()

    async def snapshot(self) -> Snapshot:
        raw = await self.etcd(self.store.load_raw)
        topo = build_topology(self.paths, raw.revision, raw.kvs)
        views = read_views(kv for kv in raw.kvs if self.paths.classify(kv[0])[0] == "view")
        workflows: dict[int, Workflow] = {}
        for path, value, mod in raw.kvs:
            kind, ident = self.paths.classify(path)
            if kind == "failover":
                try:
                    wf = Workflow.from_json(path, value, mod)
                except ModelError as e:
                    log.error("%s", e)
                    continue
                if wf.group in topo.groups and str(wf.group) == ident:
                    workflows[wf.group] = wf
        members = [a for _, a, _ in topo.nodes()]
        c = self.config
        looks = await probe.look_all(members, c.probe_timeout, c.password or None, c.dial)
        now = time.time()
        for addr, lk in looks.items():
            if lk.up and lk.log_id is not None:
                self.last_log_ids[addr] = lk.log_id
        own = View(self.observer, CONTROLLER, now,
                   self.sightings.update({a: lk.up for a, lk in looks.items()}, now))  # fmt: skip
        views = {**views, self.observer: own}
        self._own = own
        return Snapshot(now, topo, looks, views, workflows, dict(self.last_log_ids))

    async def report(self, view: View) -> None:
        lease = self.leadership.lease
        if lease is None:
            return
        await self.etcd(self.store.put, self.paths.view(self.observer), view.to_json(), lease.id)

    async def tick(self) -> None:
        self.ticks += 1
        was = self.leading
        if self.cut is None:  # cut from the nodes: let a controller that reaches them lead
            await self.etcd(self.leadership.campaign)
        snap = await self.snapshot()
        await self.report(self._own)
        self.cut = cut_off(snap, self.settings, self.observer, self.config.lease_ttl)
        self.leading = self.leadership.leading(snap.topology.version(self.paths.leader))
        if self.leading and self.cut is not None:
            await self.say(self.cut, "controller")
            await self.etcd(self.leadership.resign)
            self.leading = False
        if self.leading != was:
            await self.say(
                f"controller {self.ident} leads cluster {self.config.cluster!r}"
                if self.leading
                else f"controller {self.ident} stopped leading",
                "controller",
            )
        if not self.leading:
            self.migrations.stop()
            return
        if not snap.topology.initialised:
            return
        for action in decide(snap, self.settings, self.ident):
            if not self.leadership.leading(snap.topology.version(self.paths.leader)):
                return  # the lease got old while acting: stop at once
            await self.act(action, snap)
        if not snap.workflows:  # no migration starts while a failover is under way
            self.migrations.consider(snap.topology)

    # -- acting ------------------------------------------------------------------------------

    async def act(self, action: Action, snap: Snapshot) -> None:
        if isinstance(action, Say):
            if self.said.get(action.key, "") != action.text:
                self.said[action.key] = action.text
                await self.say(action.text)
        elif isinstance(action, StartFailover):
            await self.start_failover(action, snap)
        elif isinstance(action, Resume):
            await self.run_workflow(action.workflow, snap)
        elif isinstance(action, Rejoin):
            await self.rejoin(action)
        elif isinstance(action, MarkEpoch):
            try:
                await self.node(action.node, "NODEEPOCH", "SET", action.epoch, "MASTER")
            except (ClientError, OSError, TimeoutError) as e:
                log.info("%s: NODEEPOCH SET failed: %s", action.node, e)
                return
            await self.say(action.text)

    def _leader_guard(self) -> Guard:
        return Guard(self.paths.leader, self.leadership.revision)

    async def record(
        self,
        base: Topology,
        wf: Workflow,
        old_revision: int,
        text: str,
        writes: Sequence[Write] = (),
        bump_epoch: bool = False,
        delete: bool = False,
    ) -> Workflow:
        """Write the workflow's step (or delete it) with ``writes``, guarded by the leader key
        and the record's revision, with its sentence in the same transaction."""
        path = self.paths.failover(wf.group)
        ops = [*writes, Write(path, None if delete else wf.to_json())]
        event = EventDraft(SOURCE, "failover", text) if text else None
        try:
            revision = await self.etcd(
                self.store.commit, base, ops, bump_epoch=bump_epoch,
                guards=[self._leader_guard(), Guard(path, old_revision)], event=event,
            )  # fmt: skip
        except Conflict as e:
            raise StepFailed(f"group {wf.group}: step {wf.step} not recorded: {e}") from None
        if text:
            log.warning("%s", text)
        if not delete and wf.step == self.config.exit_after:
            log.warning("exiting after step %s (--exit-after)", wf.step)
            os._exit(3)
        return replace(wf, revision=revision)

    async def start_failover(self, action: StartFailover, snap: Snapshot) -> None:
        try:
            wf = await self.record(snap.topology, action.workflow, 0, action.text)
        except StepFailed as e:
            log.warning("%s", e)
            return
        await self.run_workflow(wf, snap)

    async def run_workflow(self, wf: Workflow, snap: Snapshot) -> None:
        try:
            if wf.step == REQUESTED:
                wf = await self.switchover_prepare(wf, snap)
                if wf.step == REQUESTED:
                    return
            if wf.step == CHOSEN:
                wf = await self.promote(wf, snap)
                if wf.step == CHOSEN:
                    return
            if wf.step == PROMOTED:
                wf = await self.commit(wf)
            if wf.step == COMMITTED:
                await self.finish(wf)
        except StepFailed as e:
            log.warning("%s; again next tick", e)

    async def _fresh(self) -> Topology:
        return await self.etcd(self.store.load)

    async def switchover_prepare(self, wf: Workflow, snap: Snapshot) -> Workflow:
        """A planned switchover: pause writes on the master, wait until the new master has
        every LogID, then fence the old one and go on as a chosen failover."""
        c = self.config
        old, new = snap.nodes.get(wf.old), snap.nodes.get(wf.new)
        if old is None or not old.writable_master or new is None or not new.up:
            await self.record(snap.topology, wf, wf.revision,
                              f"group {wf.group}: switchover to {wf.new} abandoned: "
                              f"{_state(wf.old, old)}, {_state(wf.new, new)}",
                              delete=True)  # fmt: skip
            return wf
        pause_ms = int(c.switchover_timeout * 1000) + 2000
        try:
            await self.node(wf.old, "CLIENT", "PAUSE", pause_ms, "WRITE")
        except (ClientError, OSError, TimeoutError) as e:
            raise StepFailed(f"group {wf.group}: cannot pause writes on {wf.old}: {e}") from None
        deadline = time.monotonic() + c.switchover_timeout
        target = -1
        have = -1
        while time.monotonic() < deadline:
            looks = await probe.look_all([wf.old, wf.new], c.probe_timeout, c.password or None,
                                         c.dial)  # fmt: skip
            target = looks[wf.old].log_id if looks[wf.old].up else None  # type: ignore[assignment]
            have = looks[wf.new].log_id if looks[wf.new].up else None  # type: ignore[assignment]
            if target is not None and have is not None and have >= target:
                break
            await asyncio.sleep(0.05)
        else:
            with contextlib.suppress(ClientError, OSError, TimeoutError):
                await self.node(wf.old, "CLIENT", "UNPAUSE")
            await self.record(snap.topology, wf, wf.revision,
                              f"group {wf.group}: switchover to {wf.new} abandoned: it did not "
                              f"catch up (LogID {have} of {target}) within "
                              f"{c.switchover_timeout:g} s; writes resumed on {wf.old}",
                              delete=True)  # fmt: skip
            return wf
        wf = wf.at(CHOSEN, self.ident)
        return await self.record(
            snap.topology, wf, wf.revision,
            f"group {wf.group}: writes paused on {wf.old}; {wf.new} caught up (LogID {have}); "
            f"switching over",
        )  # fmt: skip

    async def promote(self, wf: Workflow, snap: Snapshot) -> Workflow:
        old, new = snap.nodes.get(wf.old), snap.nodes.get(wf.new)
        if (
            not wf.planned
            and old is not None
            and old.writable_master
            and (new is None or new.role == "replica")
        ):
            await self.record(snap.topology, wf, wf.revision,
                              f"group {wf.group}: failover to {wf.new} rolled back: master "
                              f"{wf.old} answers again and {wf.new} was not promoted",
                              delete=True)  # fmt: skip
            return wf
        if new is None or not new.up:
            if old is not None and old.up and old.fenced:
                with contextlib.suppress(ClientError, OSError, TimeoutError):
                    await self.node(wf.old, "NODEEPOCH", "SET", wf.epoch, "MASTER")
            await self.record(snap.topology, wf, wf.revision,
                              f"group {wf.group}: failover to {wf.new} rolled back: {wf.new} "
                              f"no longer answers", delete=True)  # fmt: skip
            return wf
        # fence the old master first (it may be frozen or gone: best effort, briefly; one
        # that answers later is fenced when it does)
        try:
            await self.node(wf.old, "NODEEPOCH", "SET", wf.epoch, "FENCED",
                            timeout=self.config.probe_timeout / 4)  # fmt: skip
        except (ClientError, OSError, TimeoutError) as e:
            log.info("group %d: old master %s not fenced now (%s)", wf.group, wf.old, e)
        try:
            if new.role != "master":
                await self.node(wf.new, "REPLICAOF", "NO", "ONE")
            await self.node(wf.new, "NODEEPOCH", "SET", wf.epoch, "MASTER")
        except (ClientError, OSError, TimeoutError) as e:
            raise StepFailed(f"group {wf.group}: cannot promote {wf.new}: {e}") from None
        wf = wf.at(PROMOTED, self.ident)
        return await self.record(snap.topology, wf, wf.revision, "")

    async def commit(self, wf: Workflow) -> Workflow:
        topo = await self._fresh()
        g = topo.groups.get(wf.group)
        if g is None:
            raise StepFailed(f"group {wf.group} no longer exists")
        if wf.planned:  # proxies move only once the new master can take their writes
            await self.repoint(wf, [a for a in g.members if a != wf.new])
            await self.wait_good_replicas(wf)
        epoch = topo.epoch + 1
        replicas = tuple(r for r in (*g.members,) if r != wf.new)
        group = type(g)(id=g.id, master=wf.new, replicas=replicas, epoch=epoch)
        slots = type(topo.slots)(epoch, topo.slots.ranges)
        writes = [
            Write(self.paths.group(g.id), group.to_json()),
            Write(self.paths.slots, slots.to_json()),
        ]
        wf = wf.at(COMMITTED, self.ident, epoch=epoch)
        return await self.record(
            topo, wf, wf.revision,
            f"group {wf.group}: {wf.new} is the master at epoch {epoch} (was {wf.old}); "
            f"proxies follow the new map",
            writes=writes, bump_epoch=True,
        )  # fmt: skip

    async def finish(self, wf: Workflow) -> None:
        topo = await self._fresh()
        g = topo.groups.get(wf.group)
        if g is None:
            raise StepFailed(f"group {wf.group} no longer exists")
        # every master learns the new map (its epoch, the group's new master address)
        for pushed in await push_maps(topo, self.config.password or None):
            if pushed.error is not None:
                log.info("group %d's master %s did not take the map of epoch %d: %s",
                         pushed.group, pushed.addr, topo.epoch, pushed.error)  # fmt: skip
        done, later = await self.repoint(wf, list(g.replicas))
        if wf.planned:
            with contextlib.suppress(ClientError, OSError, TimeoutError):
                await self.node(wf.old, "CLIENT", "UNPAUSE")
        verb = "follows" if len(done) == 1 else "follow"
        follow = f"{', '.join(done)} {verb} it" if done else "no replica follows it yet"
        rest = ""
        if later:
            they = "it answers" if len(later) == 1 else "they answer"
            rest = f"; {', '.join(later)} will rejoin as a replica when {they}"
        await self.record(
            topo, wf, wf.revision,
            f"group {wf.group}: failover done: {wf.new} is master at epoch {wf.epoch}; "
            f"{follow}{rest}",
            delete=True,
        )  # fmt: skip

    async def repoint(self, wf: Workflow, addrs: list[str]) -> tuple[list[str], list[str]]:
        """Make ``addrs`` replicas of the new master (the old master fenced first): the ones
        done, and the ones that did not answer."""
        done, later = [], []
        host, _, port = wf.new.rpartition(":")
        for addr in addrs:
            try:
                if addr == wf.old:
                    await self.node(addr, "NODEEPOCH", "SET", wf.epoch, "FENCED")
                await self.node(addr, "REPLICAOF", host, port)
                done.append(addr)
            except (ClientError, OSError, TimeoutError):
                later.append(addr)
        return done, later

    async def wait_good_replicas(self, wf: Workflow) -> None:
        """Until the new master has the good replicas its min-replicas-to-write asks for
        (at most the switchover timeout: then the proxies move all the same)."""
        deadline = time.monotonic() + self.config.switchover_timeout
        while time.monotonic() < deadline:
            try:
                info = probe.info_fields(await self.node(wf.new, "INFO", "replication"))
            except (ClientError, OSError, TimeoutError):
                return  # the commit step says what happens to a master that does not answer
            need = int(info.get("min_replicas_to_write", "0") or 0)
            good = info.get("min_slaves_good_slaves", info.get("connected_slaves", "0"))
            if int(good or 0) >= need:
                return
            await asyncio.sleep(0.05)
        log.info("group %d: %s has fewer good replicas than it needs; switching over anyway",
                 wf.group, wf.new)  # fmt: skip

    async def rejoin(self, action: Rejoin) -> None:
        try:
            if action.fence:
                await self.node(action.node, "NODEEPOCH", "SET", action.epoch, "FENCED")
            host, _, port = action.master.rpartition(":")
            await self.node(action.node, "REPLICAOF", host, port)
        except (ClientError, OSError, TimeoutError) as e:
            log.info("group %d: cannot re-attach %s: %s", action.group, action.node, e)
            return
        await self.say(action.text)


def _state(addr: str, look: NodeLook | None) -> str:
    if look is None or not look.up:
        return f"{addr} does not answer"
    if look.role == "master":
        return f"{addr} is a {'fenced ' if look.fenced else ''}master"
    return f"{addr} is a replica of {look.master}"

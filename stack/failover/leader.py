"""Leadership: an etcd lease and a compare-and-create of the ``leader`` key (Patroni style).

A controller leads while the key holds the revision it created it at (so a restarted
controller with the same id never mistakes an old key for its own) and while its lease is
surely alive: it stops acting once its last accepted keep-alive is two thirds of the lease
TTL old, before etcd can expire the lease and let another controller lead.
"""

from __future__ import annotations

import logging
import time

from stack.cluster.store import Lease, Store, StoreError

log = logging.getLogger(__name__)


class Leadership:
    def __init__(self, store: Store, ident: str, ttl: int) -> None:
        self.store = store
        self.ident = ident
        self.ttl = ttl
        self.lease: Lease | None = None
        self.revision = 0  # mod revision of the leader key we created (0: not leading)

    @property
    def path(self) -> str:
        return self.store.paths.leader

    def lease_fresh(self) -> bool:
        lease = self.lease
        return lease is not None and time.monotonic() - lease.last_ok < self.ttl * 2 / 3

    def leading(self, key_revision: int) -> bool:
        """Whether this controller may act, given the leader key's mod revision in the
        snapshot it acts on."""
        return bool(self.revision) and key_revision == self.revision and self.lease_fresh()

    def campaign(self) -> bool:
        """Take the leader key if nobody holds it (blocking: run it in the store's pool).
        True when this controller leads after the call."""
        if self.lease is None:
            self.lease = self.store.lease(self.ttl)
        value, revision = self.store.get_raw(self.path)
        if value is None and self.store.compare_and_put(
            self.path, self.ident.encode(), 0, self.lease.id
        ):
            value, revision = self.store.get_raw(self.path)
            if value == self.ident.encode():
                self.revision = revision
                log.info("leading cluster %r (leader key at revision %d)",
                         self.store.cluster, revision)  # fmt: skip
                return self.lease_fresh()
        if self.revision and revision != self.revision:
            log.warning("no longer the leader (the key is now %r)", value)
            self.revision = 0
        return bool(self.revision) and self.lease_fresh()

    def resign(self) -> None:
        """Give the key up at once (the lease is revoked, so the key goes with it)."""
        if self.lease is not None:
            try:
                self.lease.stop(revoke=True)
            except StoreError as e:
                log.info("could not revoke the lease: %s", e)
        self.lease = None
        self.revision = 0

"""Secure defaults as Redis 7: protected mode, protected commands and protected configs.

Which peer is "local" follows Redis 7.0 exactly: a client is local when its address is
``127.0.0.1`` or ``::1`` (an IPv4-mapped ``::ffff:127.0.0.1`` too, since a dual-stack socket
shows IPv4 peers that way). Other loopback addresses such as ``127.0.0.2`` are not local to
Redis 7.0.15 (protected mode denies them, ``enable-debug-command local`` refuses them), and so
not to us either.

- Protected mode (``protected-mode yes``, the default): while the default user has no password,
  a client that is not local gets Redis's ``-DENIED`` text and is disconnected.
- Protected commands: DEBUG runs only as ``enable-debug-command`` (``no`` by default, ``yes``,
  ``local``) allows.
- Protected configs: settings that choose where files are written are refused by CONFIG SET
  unless ``enable-protected-configs`` (``no`` by default) allows it for this client.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any, Protocol

log = logging.getLogger(__name__)

LOCAL_ADDRESSES = frozenset({"127.0.0.1", "::1"})

# Commands that run only where their setting allows (Redis: DEBUG, MODULE).
PROTECTED_COMMANDS = {"debug": ("DEBUG", "enable-debug-command")}

PROTECTED_CHOICES = ("no", "yes", "local")


class Settings(Protocol):
    """The running configuration (``Config``), as far as this module reads it."""

    def __getitem__(self, name: str) -> Any: ...


def is_local_peer(peer: object) -> bool:
    """Whether a socket peer (as ``getpeername`` gives it) is local in Redis 7.0's sense."""
    if isinstance(peer, (str, bytes)):  # a unix socket path
        return True
    if not isinstance(peer, tuple) or not peer:
        return False
    host = str(peer[0])
    if host in LOCAL_ADDRESSES:
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped is not None and str(mapped) in LOCAL_ADDRESSES


def allowed(setting: str, local: bool) -> bool:
    """Redis's ``allowProtectedAction``: ``yes`` for anyone, ``local`` for local clients."""
    return setting == "yes" or (setting == "local" and local)


def denies_connection(config: Settings, local: bool, no_password: bool | None = None) -> bool:
    """Protected mode refuses this connection (no password and a peer that is not local).
    ``no_password``: the default user needs none (``requirepass`` empty when not given)."""
    if no_password is None:
        no_password = not config["requirepass"]
    return config["protected-mode"] == "yes" and no_password and not local


def _is_loopback_bind(bind: str) -> bool:
    for part in bind.split():
        try:
            if not ipaddress.ip_address(part.lstrip("-")).is_loopback:
                return False
        except ValueError:  # a host name: treat as reachable from outside
            return False
    return True


def startup_warnings(config: Settings, no_password: bool | None = None) -> list[str]:
    """What the operator must hear at start about how exposed the server is (``no_password``:
    the default user needs none; ``requirepass`` empty when not given)."""
    bind = str(config["bind"])
    if no_password is None:
        no_password = not config["requirepass"]
    if _is_loopback_bind(bind) or not no_password:
        return []
    if config["protected-mode"] == "yes":
        return [
            f"WARNING: listening on {bind} with no password set: protected mode is on, so "
            "clients from other hosts are refused (-DENIED) until requirepass is set or "
            "protected-mode is turned off."
        ]
    return [
        f"WARNING: listening on {bind} with no password and protected mode off: anyone who can "
        "reach this address can read, change and delete every key. Set requirepass."
    ]

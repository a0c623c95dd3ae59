"""The distributed store: the shared core, the server, the proxy and the failover controller.

Nothing under ``stack`` imports ``console``, textual, prompt_toolkit or asyncssh.
"""

__version__ = "0.1.0"
REDIS_VERSION = "7.0.15"  # the Redis release whose semantics and replies we follow

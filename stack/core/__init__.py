"""The shared core: RESP codec, command table, slot function, glob patterns.

Imported by server, proxy, failover and console alike; it imports none of them.
"""

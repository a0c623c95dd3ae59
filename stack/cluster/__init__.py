"""The cluster's shared package: topology model, etcd paths, the etcd store, plans.

Imported by the proxy, the controller and the console; imports only ``stack.core`` (and
``etcd3`` in ``store.py`` alone). See docs/cluster.md.
"""

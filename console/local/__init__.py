"""The local cluster: ``ledis-console up`` and ``down``."""

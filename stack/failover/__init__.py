"""ledis-failover: the cluster's controller (docs/failover.md)."""

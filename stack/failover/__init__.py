"""ledis-failover: the controller that monitors, fails over and fences (not yet built)."""

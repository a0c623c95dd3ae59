"""ledis-proxy: routes clients to groups by slot (not yet built)."""

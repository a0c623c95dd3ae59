"""``ledis-console deploy``: a cluster onto hosts over SSH, from a TOML playbook."""

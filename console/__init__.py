"""The operator console: dashboard, REPL and deploy (being built)."""

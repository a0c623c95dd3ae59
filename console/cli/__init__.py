"""ledis-cli: a REPL that completes and explains every command from the one command table."""

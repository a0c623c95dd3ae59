"""The Textual dashboard (``ledis-console`` with no command); docs/console.md."""

"""CONFIG REWRITE keeps the file as the person wrote it (comments, blank lines, order, unknown
lines, an alias's spelling) and changes only the values of settings, as Redis does."""

from __future__ import annotations

import tomllib
from pathlib import Path

from stack.server.config import Config, read_file
from stack.server.config_rewrite import ADDED_HEADER, entries, rewrite

FILE = """\
# my server
port = 7401   # where it listens

# durability: see the docs
appendfsync = "everysec"
dir = "/var/lib/ledis"
users = [
    "alice on >pw ~cache:* +@read",   # the cache reader
    "bob on >pw2 [x] +get",
]
note = '''a multi-line
string with = and [ in it'''
"""


def test_entries_cut_multi_line_values_whole() -> None:
    cut = entries(FILE)
    keys = [e.key for e in cut if e.key is not None]
    assert keys == ["port", "appendfsync", "dir", "users", "note"]
    users = next(e for e in cut if e.key == "users")
    assert len(users.lines) == 4 and users.lines[-1] == "]"
    note = next(e for e in cut if e.key == "note")
    assert len(note.lines) == 2
    assert "".join("".join(e.lines) for e in cut) == FILE.replace("\n", "")


def test_rewrite_replaces_values_in_place_and_adds_the_rest() -> None:
    values = {"port": "7402", "users": '[\n    "carol on >x +ping",\n]'}
    out = rewrite(FILE, values.get, [("maxclients", "50")])
    assert out.startswith(
        "# my server\nport = 7402  # where it listens\n\n# durability: see the docs\n"
    )
    assert 'appendfsync = "everysec"' in out and 'dir = "/var/lib/ledis"' in out
    assert "carol" in out and "alice" not in out and "bob" not in out
    assert out.endswith(f"\n{ADDED_HEADER}\nmaxclients = 50\n")
    doc = tomllib.loads(out)
    assert doc["port"] == 7402 and doc["note"].startswith("a multi-line")
    assert doc["users"] == ["carol on >x +ping"]


def test_config_rewrite_keeps_comments_and_aliases(tmp_path: Path) -> None:
    path = tmp_path / "ledis.toml"
    path.write_text(
        "# the cache node\n"
        "maxclients = 100  # per the load test\n"
        "\n"
        "# where the data lives\n"
        f'dir = "{tmp_path}"\n'
    )
    values, users = read_file(path)
    config = Config(values, path, users)
    config.set_many([("maxclients", "50"), ("timeout", "7")])
    config.rewrite()
    text = path.read_text()
    assert text == (
        "# the cache node\n"
        "maxclients = 50  # per the load test\n"
        "\n"
        "# where the data lives\n"
        f'dir = "{tmp_path}"\n'
        "\n"
        f"{ADDED_HEADER}\n"
        "timeout = 7\n"
    )
    again, _ = read_file(path)
    assert again["maxclients"] == 50 and again["timeout"] == 7
    config.rewrite()  # a second rewrite changes nothing
    assert path.read_text() == text


def test_the_example_config_keeps_its_documentation(tmp_path: Path) -> None:
    """The newcomer's case: CONFIG SET hz 20 + CONFIG REWRITE on a copy of the shipped
    example left none of its comments."""
    example = Path(__file__).resolve().parent.parent / "ledis-server.example.toml"
    path = tmp_path / "ledis.toml"
    original = example.read_text().replace('"./ledis-data"', f'"{tmp_path}"')
    path.write_text(original)
    values, users = read_file(path)
    config = Config(values, path, users)
    config.set_many([("hz", "20")])
    config.rewrite()
    text = path.read_text()
    comments = [line for line in original.splitlines() if line.lstrip().startswith("#")]
    assert comments and all(line in text.splitlines() for line in comments)
    assert read_file(path)[0]["hz"] == 20

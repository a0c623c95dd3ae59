"""Coverage-guided fuzzing of one target with atheris (libFuzzer).

    python -m fuzz.atheris_main TARGET [CORPUS_DIR ...] [-max_total_time=S] [libFuzzer flags]

TARGET is ``resp``, ``dump`` or ``commands`` (``fuzz.targets.TARGETS``). A ``Finding`` or any
other exception is a crash: libFuzzer saves the input (``-artifact_prefix``) and exits non-zero.
Pass ``-timeout=0``: the command target keeps its own per-command deadline on SIGALRM, which
libFuzzer's timer would share.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["stack", "fuzz"]):
    from fuzz.targets import TARGETS
    from stack.server.commands import load_all
    from stack.server.server import Server  # noqa: F401  (instrumented for the commands target)

    load_all()


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m fuzz.atheris_main {{{','.join(TARGETS)}}} [libFuzzer args]")
    target = TARGETS[sys.argv[1]]
    if sys.argv[1] == "commands":
        from fuzz.targets import in_process

        in_process()  # build the in-process server before fuzzing starts
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

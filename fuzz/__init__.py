"""Fuzzing harness for ledis-server (kept in the repository, run by the tests and by hand).

- ``targets``: in-process targets for the RESP request parser, the DUMP decoder and the
  command handlers (run against an in-process keyspace); each takes bytes and raises
  ``Finding`` when an invariant breaks.
- ``atheris_main``: coverage-guided fuzzing of one target with atheris (libFuzzer).
- ``mutator``: a small seeded mutation driver over the same targets, where atheris is missing
  and for reproducible short runs.
- ``socket_fuzz``: valid and hostile traffic against a live server, checking after each round
  that it answers, that a bystander connection and a canary dataset are untouched, and that its
  memory stays bounded.
- ``run``: the long run, ``python -m fuzz.run --minutes 30``: every target, then the socket
  fuzzer, and one summary (inputs tried, crashes, hangs, max RSS).
"""

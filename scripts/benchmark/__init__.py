"""The side-by-side benchmark behind scripts/bench (issue 7).

Every target runs in its own process on loopback against one fake upstream,
so each process's CPU and memory can be read from /proc and nothing shares
an interpreter with the load generator. Importing this package is free: the
heavy imports live in the modules that need them.
"""

"""Operations: the ``novacache`` command (:mod:`.cli`), the demo (:mod:`.demo`), the
Prometheus metrics (:mod:`.metrics`, ``pip install novacache[ops]``) and the health
monitor (:mod:`.health`); see docs/operations.md. Nothing is imported here: each module
is imported where it is used."""

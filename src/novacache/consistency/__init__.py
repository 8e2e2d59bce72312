"""Consistency: the models per key prefix and the history checker that proves them.

See docs/consistency.md. :mod:`.checker` checks recorded histories (linearizability per
key, session and monotonic-read invariants); :mod:`.spec` names the models per key
prefix and makes session tokens, :mod:`.versions` the versions they compare. The
managers apply the models in :mod:`novacache.manager._async.consistency` (a layer
above this package, which imports nothing of the manager).
"""

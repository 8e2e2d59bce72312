"""Consistency: the models per key prefix and the history checker that proves them.

See docs/consistency.md. :mod:`.checker` checks recorded histories (linearizability per
key, session and monotonic-read invariants); :mod:`.models` holds the ``strong``,
``session`` and ``monotonic`` models the managers apply per key prefix.
"""

"""The asyncio source of the consistency models (``../_sync`` is generated from it)."""

"""The tiers' hand-written sources (asyncio); ``_sync/`` is generated from them by
``scripts/unasync.py``."""

"""The invalidation engine's one hand-written source (asyncio); ``_sync/`` is generated
from it by ``scripts/unasync.py``."""

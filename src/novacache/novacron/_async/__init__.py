"""The asyncio domain caches: the one hand-written source of ``../_sync``."""

"""The OpenAPI 3.1 document of the management API (:mod:`novacache.ops.http`), built for one
app's settings (which endpoints need the token), so that ``/openapi.json`` says exactly
what that app does. ``schemathesis`` runs against it in the tests."""

from __future__ import annotations

from typing import Any

__all__ = ["PRIORITIES", "WARMUP_SCOPES", "WARMUP_TYPES", "document"]

WARMUP_TYPES = ("vm_metadata", "resource_allocation", "migration_state")
WARMUP_SCOPES = ("node", "cluster", "all")
PRIORITIES = ("low", "normal", "high")

_NULL_INT = {"type": ["integer", "null"], "minimum": 0}
_NULL_NUM = {"type": ["number", "null"], "minimum": 0}
_COUNT = {"type": "integer", "minimum": 0}
_RATE = {"type": ["number", "null"], "minimum": 0, "maximum": 1}

_ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "string"},
    },
}

_LAYER = {
    "type": "object",
    "required": [
        "kind",
        "hits",
        "misses",
        "hit_rate",
        "avg_latency_ms",
        "size_bytes",
        "entries",
        "evictions",
        "errors",
    ],
    "properties": {
        "kind": {"type": "string"},
        "hits": _COUNT,
        "misses": _COUNT,
        "hit_rate": _RATE,
        "avg_latency_ms": _NULL_NUM,
        "size_bytes": _NULL_INT,
        "entries": _NULL_INT,
        "evictions": _NULL_INT,
        "errors": _COUNT,
        "expired": _COUNT,
        "corrupt": _COUNT,
    },
}

_STATS = {
    "type": "object",
    "required": ["layers", "overall", "invalidation", "bus", "taken_at"],
    "properties": {
        "layers": {"type": "object", "additionalProperties": _LAYER},
        "overall": {
            "type": "object",
            "required": ["lookups", "hits", "misses", "hit_rate", "loads", "write_errors"],
            "properties": {
                "lookups": _COUNT,
                "hits": _COUNT,
                "misses": _COUNT,
                "hit_rate": _RATE,
            },
            "additionalProperties": {"type": "integer", "minimum": 0},
        },
        "invalidation": {
            "type": ["object", "null"],
            "additionalProperties": {"type": "integer", "minimum": 0},
        },
        "bus": {
            "type": ["object", "null"],
            "required": ["healthy"],
            "properties": {"healthy": {"type": "boolean"}},
            "additionalProperties": {"type": "integer", "minimum": 0},
        },
        "taken_at": {
            "type": "number",
            "description": "when this snapshot was taken (Unix seconds): the document is "
            "built at most once per stats_interval (0.1 s by default)",
        },
    },
}

_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}}

_INVALIDATE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "keys": {"type": "array", "items": {"type": "string"}},
        "patterns": _STRINGS,
        "tags": _STRINGS,
        "force": {"type": "boolean", "default": False},
    },
    "anyOf": [
        {"required": ["keys"], "properties": {"keys": {"minItems": 1}}},
        {"required": ["patterns"], "properties": {"patterns": {"minItems": 1}}},
        {"required": ["tags"], "properties": {"tags": {"minItems": 1}}},
    ],
    # A pattern that begins with a wildcard can match every key: it needs force.
    "if": {
        "required": ["patterns"],
        "properties": {"patterns": {"contains": {"type": "string", "pattern": "^[*?]"}}},
    },
    "then": {"required": ["force"], "properties": {"force": {"const": True}}},
}

_QUEUED = {
    "type": "object",
    "required": ["id", "forced", "queued"],
    "properties": {
        "id": {"type": "string"},
        "forced": {"const": False},
        "queued": _COUNT,
    },
}

_DONE = {
    "type": "object",
    "required": ["id", "forced", "ok", "keys", "dropped", "errors", "scanned", "truncated"],
    "properties": {
        "id": {"type": "string"},
        "forced": {"const": True},
        "ok": {"type": "boolean"},
        "keys": _COUNT,
        "dropped": {"type": "object", "additionalProperties": _COUNT},
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
        "scanned": _COUNT,
        "truncated": {"type": "boolean"},
    },
}

_TIER_HEALTH = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string"},
        "latency_s": _NULL_NUM,
        "detail": {"type": "object"},
        "consecutive_failures": _NULL_INT,
        "consecutive_successes": _NULL_INT,
    },
}

_HEALTH = {
    "type": "object",
    "required": ["status", "layers", "checked_at", "uptime_s", "metrics"],
    "properties": {
        "status": {"enum": ["healthy", "degraded", "unhealthy"]},
        "layers": {"type": "object", "additionalProperties": _TIER_HEALTH},
        "checked_at": {"type": "number"},
        "uptime_s": {"type": "number", "minimum": 0},
        "metrics": {"type": "object"},
    },
}

_PROBE = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string"},
        "layers": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

_WARMUP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type"],
    "properties": {
        "type": {"enum": list(WARMUP_TYPES)},
        "scope": {"enum": list(WARMUP_SCOPES), "default": "all"},
        "targets": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "priority": {"enum": list(PRIORITIES), "default": "normal"},
        "parameters": {"type": "object"},
    },
}

_JOB = {
    "type": "object",
    "required": ["id", "type", "scope", "priority", "state", "progress", "result", "error"],
    "properties": {
        "id": {"type": "string"},
        "type": {"enum": list(WARMUP_TYPES)},
        "scope": {"enum": list(WARMUP_SCOPES)},
        "priority": {"enum": list(PRIORITIES)},
        "state": {"enum": ["queued", "running", "done", "failed"]},
        "progress": {
            "type": "object",
            "required": ["done", "total"],
            "properties": {"done": _COUNT, "total": _NULL_INT},
        },
        "result": {
            "type": ["object", "null"],
            "required": ["loaded", "skipped", "failed", "seconds"],
            "properties": {
                "loaded": _COUNT,
                "skipped": _COUNT,
                "failed": _COUNT,
                "seconds": {"type": "number", "minimum": 0},
            },
        },
        "error": {"type": ["string", "null"]},
        "created_at": {"type": "number"},
    },
}


def _json(schema: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(schema, str):
        schema = {"$ref": f"#/components/schemas/{schema}"}
    return {"application/json": {"schema": schema}}


def _answer(text: str, schema: dict[str, Any] | str = "Error") -> dict[str, Any]:
    return {"description": text, "content": _json(schema)}


def document(*, protect_reads: bool, title: str = "novacache management API") -> dict[str, Any]:
    """The OpenAPI 3.1 document of an app whose read endpoints need the token when
    ``protect_reads`` (the endpoints that change state always do)."""
    from .._version import __version__

    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    unauthorized = _answer("no bearer token, or a wrong one: nothing was done")
    unavailable = _answer("the provider of this endpoint is not configured, or failed")

    def read(op: dict[str, Any]) -> dict[str, Any]:
        if protect_reads:
            op["security"] = bearer
            op["responses"]["401"] = unauthorized
        else:
            op["security"] = []
        return op

    def write(op: dict[str, Any]) -> dict[str, Any]:
        op["security"] = bearer
        op["responses"]["401"] = unauthorized
        op["responses"]["413"] = _answer(
            "the body is larger than max_body_bytes, or names more than max_keys items"
        )
        op["responses"]["422"] = _answer("the body is not JSON or not what the schema says")
        return op

    paths: dict[str, Any] = {
        "/api/cache/stats": {
            "get": read(
                {
                    "operationId": "stats",
                    "summary": "Hits, misses, hit rate, latency, size, entries, evictions and "
                    "errors per layer (local, remote, store) and overall",
                    "responses": {
                        "200": _answer(
                            "the counters: a snapshot at most stats_interval old", "Stats"
                        )
                    },
                }
            )
        },
        "/api/cache/invalidate": {
            "post": write(
                {
                    "operationId": "invalidate",
                    "summary": "Invalidate keys, patterns and tags; queued (202) unless force",
                    "requestBody": {"required": True, "content": _json("Invalidate")},
                    "responses": {
                        "200": _answer("force: done in every tier and every L1", "Invalidated"),
                        "202": _answer("queued in the batch invalidator", "Queued"),
                        "503": unavailable,
                    },
                }
            )
        },
        "/api/cache/health": {
            "get": read(
                {
                    "operationId": "health",
                    "summary": "The health monitor's last report (status, layers, last "
                    "check, uptime) and the overall counters",
                    "responses": {
                        "200": _answer("healthy or degraded", "Health"),
                        "503": _answer(
                            "unhealthy, or no health monitor configured",
                            {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/Health"},
                                    {"$ref": "#/components/schemas/Error"},
                                ]
                            },
                        ),
                    },
                }
            )
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness: the process answers",
                "security": [],
                "responses": {"200": _answer("alive", "Probe")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness: the manager is open and not unhealthy",
                "security": [],
                "responses": {
                    "200": _answer("ready (possibly degraded)", "Probe"),
                    "503": _answer("not ready", "Probe"),
                },
            }
        },
        "/api/cache/warmup": {
            "post": write(
                {
                    "operationId": "warmup",
                    "summary": "Start a warmup job (bounded background work)",
                    "requestBody": {"required": True, "content": _json("Warmup")},
                    "responses": {
                        "202": _answer("the job, queued", "Job"),
                        "429": _answer("too many warmup jobs queued: retry later"),
                        "503": unavailable,
                    },
                }
            )
        },
        "/api/cache/warmup/{id}": {
            "get": read(
                {
                    "operationId": "warmupJob",
                    "summary": "A warmup job's state and progress",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": _answer("the job", "Job"),
                        "404": _answer("no such job (unknown or forgotten)"),
                    },
                }
            )
        },
        "/metrics": {
            "get": read(
                {
                    "operationId": "metrics",
                    "summary": "The Prometheus exposition",
                    "responses": {
                        "200": {
                            "description": "the metrics",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "503": unavailable,
                    },
                }
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _ERROR,
                "Stats": _STATS,
                "Invalidate": _INVALIDATE,
                "Queued": _QUEUED,
                "Invalidated": _DONE,
                "Health": _HEALTH,
                "Probe": _PROBE,
                "Warmup": _WARMUP,
                "Job": _JOB,
            },
        },
    }

"""CDS Hooks 2.0 JSON Schemas, written from the specification (https://cds-hooks.hl7.org/2.0/).

No package ships them: these encode the spec's REQUIRED / OPTIONAL / CONDITIONAL tables for
the discovery response (section "Discovery"), the CDS service response and Card ("CDS Service
Response", "Card Attributes", "Source", "Suggestion", "Action", "Link", Coding), and the
feedback request ("Feedback").
"""

from typing import Any

CODING: dict[str, Any] = {
    "type": "object",
    "required": ["code", "system"],
    "properties": {
        "code": {"type": "string", "minLength": 1},
        "system": {"type": "string", "minLength": 1},
        "display": {"type": "string"},
    },
}
OVERRIDE_REASON: dict[str, Any] = CODING | {"required": ["code", "system", "display"]}
DISCOVERY: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["services"],
    "properties": {
        "services": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["hook", "description", "id"],
                "properties": {
                    "hook": {"type": "string", "minLength": 1},
                    "title": {"type": "string"},
                    "description": {"type": "string", "minLength": 1},
                    "id": {"type": "string", "pattern": "^[^/?#]+$"},
                    "prefetch": {"type": "object", "additionalProperties": {"type": "string"}},
                    "usageRequirements": {"type": "string"},
                    "extension": {"type": "object"},
                },
                "additionalProperties": False,
            },
        },
        "extension": {"type": "object"},
    },
    "additionalProperties": False,
}
_ACTION: dict[str, Any] = {
    "type": "object",
    "required": ["type", "description"],
    "properties": {
        "type": {"enum": ["create", "update", "delete"]},
        "description": {"type": "string"},
        "resource": {"type": "object"},
        "resourceId": {"type": "array", "items": {"type": "string"}},
    },
}
CARD: dict[str, Any] = {
    "type": "object",
    "required": ["summary", "indicator", "source"],
    "properties": {
        "uuid": {"type": "string", "format": "uuid"},
        "summary": {"type": "string", "minLength": 1, "maxLength": 140},
        "detail": {"type": "string"},
        "indicator": {"enum": ["info", "warning", "critical"]},
        "source": {
            "type": "object",
            "required": ["label"],
            "properties": {
                "label": {"type": "string", "minLength": 1},
                "url": {"type": "string", "format": "uri"},
                "icon": {"type": "string", "format": "uri"},
                "topic": CODING,
            },
            "additionalProperties": False,
        },
        "suggestions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["label"],
                "properties": {
                    "label": {"type": "string"},
                    "uuid": {"type": "string"},
                    "isRecommended": {"type": "boolean"},
                    "actions": {"type": "array", "items": _ACTION},
                },
            },
        },
        "selectionBehavior": {"enum": ["at-most-one", "any"]},
        "overrideReasons": {"type": "array", "items": OVERRIDE_REASON},
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["label", "url", "type"],
                "properties": {
                    "label": {"type": "string", "minLength": 1},
                    "url": {"type": "string", "format": "uri"},
                    "type": {"enum": ["absolute", "smart"]},
                    "appContext": {"type": "string"},
                    "autolaunchable": {"type": "boolean"},
                },
                "additionalProperties": False,
            },
        },
        "extension": {"type": "object"},
    },
    # CONDITIONAL: selectionBehavior is required when suggestions are present.
    "dependentRequired": {"suggestions": ["selectionBehavior"]},
    "additionalProperties": False,
}
RESPONSE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["cards"],
    "properties": {
        "cards": {"type": "array", "items": CARD},
        "systemActions": {"type": "array", "items": _ACTION},
    },
    "additionalProperties": False,
}

"""The rule-pack API's response body."""

from typing import Any

from pydantic import BaseModel, ConfigDict

from app.audit.canonical import Timestamp


class RulePackRead(BaseModel):
    """A rule pack exactly as a stored decision used it (canonical content)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "sha256": "3f0c5b1e9d2a4c6b8e7f1a2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3",
                    "id": "ketamine-infusion",
                    "version": "1.0.0",
                    "loaded_at": "2026-06-01T08:00:00.000000Z",
                    "content": {"id": "ketamine-infusion", "rules": ["..."]},
                }
            ]
        },
    )

    sha256: str
    id: str
    version: str
    loaded_at: Timestamp
    content: dict[str, Any]

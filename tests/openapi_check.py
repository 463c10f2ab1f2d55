"""Every response the test client receives is checked against the app's OpenAPI document.

``ResponseCheck`` is an httpx response hook of the ``client`` fixture: for a route in the
document, a documented status must come with a documented media type, and a JSON body is
validated against that response's schema (JSON Schema 2020-12, as OpenAPI 3.1 uses, with
the document's components). A status the route does not document fails the test, except a
405 or the last-resort 500. Pages and static files are not in the document.
"""

import json
import re
from typing import Any

import httpx2
from fastapi import FastAPI
from jsonschema import Draft202012Validator

# Statuses any route may answer without documenting them: the last-resort 500 and the
# framework's own 405 for a path without the method.
_ALWAYS = frozenset({405, 500})


class ResponseCheck:
    """Validate each response of the documented routes of ``app`` (an httpx response hook)."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._paths: list[tuple[re.Pattern[str], str]] | None = None
        self.checked: list[tuple[str, str, int]] = []

    def _operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        document = self._app.openapi()
        if self._paths is None:  # templates with fewer parameters first: static paths win
            templates = sorted(document["paths"], key=lambda template: template.count("{"))
            self._paths = [
                (re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(t)) + "$"), t)
                for t in templates
            ]
        for pattern, template in self._paths:
            operation = document["paths"][template].get(method.lower())
            if operation is not None and pattern.match(path):
                return template, operation
        return None

    def __call__(self, response: httpx2.Response) -> None:
        """Check one response (raises AssertionError if it does not match the document)."""
        method = response.request.method
        found = self._operation(method, response.request.url.path)
        if found is None:
            return
        path, operation = found
        documented = operation["responses"].get(str(response.status_code))
        if documented is None:
            assert response.status_code in _ALWAYS, f"{method} {path}: undocumented status"
            return
        response.read()
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        content = {
            documented_type.split(";")[0].strip(): value
            for documented_type, value in documented.get("content", {}).items()
        }
        if not content:
            return
        assert media_type in content, f"{method} {path} {response.status_code}: {media_type}"
        schema = content[media_type].get("schema")
        if schema is not None:
            validate(self._app.openapi(), schema, json.loads(response.content))
        self.checked.append((method, path, response.status_code))


def validate(document: dict[str, Any], schema: dict[str, Any], instance: Any) -> None:
    """Validate ``instance`` against ``schema``, its references resolved in ``document``."""
    rooted = {**schema, "components": document.get("components", {})}
    errors = sorted(Draft202012Validator(rooted).iter_errors(instance), key=str)
    assert errors == [], [f"{list(error.absolute_path)}: {error.message}" for error in errors]

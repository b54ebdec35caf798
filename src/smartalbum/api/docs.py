"""/docs: the API's endpoints as one plain HTML page made from the OpenAPI document (works offline, no JS)."""

from __future__ import annotations

from html import escape
from typing import Any

_METHODS = ("get", "post", "put", "patch", "delete")


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    if schema.get("type") == "array":
        return f"list[{_type(schema.get('items', {}))}]"
    kind = str(schema.get("type", "any"))
    return f"{kind} ({schema['format']})" if "format" in schema else kind


def _constraints(schema: dict[str, Any]) -> str:
    parts = []
    for key, label in (
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("default", "default"),
    ):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    each = _constraints(schema["items"]) if isinstance(schema.get("items"), dict) else ""
    if each:
        parts.append(f"each: {each}")
    return ", ".join(parts)


def _fields(schema: dict[str, Any], components: dict[str, Any]) -> str:
    if "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    return "".join(
        f"<li><code>{escape(name)}</code>{'' if name in required else '?'}: {escape(_type(p))}"
        f"{' (' + escape(_constraints(p)) + ')' if _constraints(p) else ''}</li>"
        for name, p in props.items()
    )


def _param(p: dict[str, Any]) -> str:
    schema = p.get("schema", {})
    required = ", required" if p.get("required") else ""
    limits = _constraints(schema)
    about = p.get("description") or schema.get("description") or ""
    return (
        f"<li><code>{escape(p['name'])}</code> ({escape(p['in'])}{required}): {escape(_type(schema))}"
        f"{' — ' + escape(limits) if limits else ''}{'. ' + escape(about) if about else ''}</li>"
    )


def render_docs(openapi: dict[str, Any]) -> str:
    components = openapi.get("components", {}).get("schemas", {})
    rows = []
    for path, item in openapi.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = "".join(_param(p) for p in op.get("parameters", []))
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            body_html = f"<p>JSON body:</p><ul>{_fields(body, components)}</ul>" if body else ""
            ok = next((c for c in op.get("responses", {}) if c.startswith("2")), "")
            ok_schema = op.get("responses", {}).get(ok, {}).get("content", {}).get("application/json", {})
            returns = escape(_type(ok_schema.get("schema", {}))) if ok_schema else "a file"
            summary = escape(op.get("description") or op.get("summary") or "")
            rows.append(
                f'<section class="doc-op"><h2><span class="doc-method doc-{method}">{method.upper()}</span> '
                f"<code>{escape(path)}</code></h2><p>{summary}</p>"
                f"{'<ul>' + params + '</ul>' if params else ''}{body_html}"
                f"<p>Returns {escape(ok)}: {returns}</p></section>"
            )
    title = escape(openapi.get("info", {}).get("title", "API"))
    version = escape(openapi.get("info", {}).get("version", ""))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{title} API</title><link rel="stylesheet" href="/static/app.css"></head>'
        f'<body class="doc-page"><main><h1>{title} API {version}</h1>'
        '<p>Errors are JSON: <code>{"error": message, "hint": hint}</code>. With a token, send '
        "<code>Authorization: Bearer &lt;token&gt;</code>. The machine-readable document is "
        '<a href="/openapi.json">/openapi.json</a>.</p>' + "".join(rows) + "</main></body></html>"
    )

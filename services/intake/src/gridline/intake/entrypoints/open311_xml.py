"""Open311 answers as bytes in either format: the routes map each resource to plain dicts
and lists once; this module renders them as JSON or as the specification's XML.

XML element names follow GeoReport v2: a list is a container whose items take the
singular name (`<services><service>`, `<service_requests><request>`,
`<attributes><attribute>`, `<values><value>`, `<endpoints><endpoint>`,
`<formats><format>`, `<errors><error>`); booleans are `true`/`false`; null is an empty
element."""

from __future__ import annotations

import json
import re
from typing import Any, Literal
from xml.etree.ElementTree import Element, SubElement, tostring

Format = Literal["json", "xml"]
FORMATS: tuple[Format, ...] = ("json", "xml")
MEDIA_TYPES: dict[Format, str] = {"json": "application/json", "xml": "text/xml; charset=utf-8"}
# The item element of each list the specification names.
ITEMS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}
# Characters XML 1.0 cannot carry at all (input refuses them; older rows may hold them).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def format_of(path: str) -> Format:
    return "xml" if path.endswith(".xml") else "json"


def render(fmt: Format, root: str, content: Any) -> bytes:
    """`content` (a list for a list resource, else a dict) under `root` in XML; as is in
    JSON, where the root is implicit."""
    if fmt == "json":
        return json_bytes(content)
    element = Element(root)
    _fill(element, root, content)
    xml: bytes = tostring(element, encoding="utf-8", xml_declaration=True)
    return xml


def json_bytes(content: Any) -> bytes:
    """JSON as FastAPI's JSONResponse renders it (UTF-8, compact)."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def errors(fmt: Format, code: int, description: str) -> bytes:
    """The specification's error answer: [{code, description}] or <errors><error>."""
    return render(fmt, "errors", [{"code": code, "description": description}])


def _fill(element: Element, name: str, value: Any) -> None:
    if isinstance(value, list):
        item = ITEMS.get(name, "item")
        for entry in value:
            _fill(SubElement(element, item), item, entry)
    elif isinstance(value, dict):
        for key, entry in value.items():
            _fill(SubElement(element, key), key, entry)
    elif value is None:
        return
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = _NOT_XML.sub("\ufffd", str(value))

"""Reading a POM's element tree by local names (a POM may or may not use Maven's namespace)."""

from __future__ import annotations

import xml.etree.ElementTree as ET


def local(tag: object) -> str:
    """`{http://maven.apache.org/POM/4.0.0}version` → `version`."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def child(element: ET.Element | None, name: str) -> ET.Element | None:
    if element is None:
        return None
    return next((item for item in element if local(item.tag) == name), None)


def children(element: ET.Element | None, name: str) -> list[ET.Element]:
    return [item for item in element if local(item.tag) == name] if element is not None else []


def text(element: ET.Element | None, name: str) -> str | None:
    """The stripped text of the child `name`; None when it is absent or empty."""
    found = child(element, name)
    value = (found.text or "").strip() if found is not None else ""
    return value or None


def at(element: ET.Element | None, path: str) -> ET.Element | None:
    """The element at a `/`-separated path of local names below `element`."""
    for name in path.split("/"):
        element = child(element, name)
    return element

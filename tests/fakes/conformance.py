"""The conformance bodies of ``tests/conformance/ibm/`` (facts from IBM's public sources).

The fakes serve these bodies where a scenario calls for them (an IAM refusal, a 422 on job
creation, a session answer's ``messages``), and ``tests/test_conformance_ibm.py`` checks
every fake answer against their required fields, enum values and types, so a fake cannot
drift into our own reading of the APIs. Each file names its source in ``_source``.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent / "conformance" / "ibm"


@cache
def _read(name: str) -> dict[str, Any]:
    return json.loads((ROOT / f"{name}.json").read_text())


def fixture(name: str) -> dict[str, Any]:
    """The whole conformance file ``name`` (e.g. ``"iam/token"``), a fresh copy."""
    return copy.deepcopy(_read(name))


def body(name: str) -> Any:
    """The example body of conformance file ``name`` (a fresh copy the caller may change)."""
    return fixture(name)["body"]


def names() -> list[str]:
    """Every conformance file, as ``"<service>/<name>"``."""
    return sorted(str(p.relative_to(ROOT).with_suffix("")) for p in ROOT.glob("*/*.json"))


def values(document: Any, path: str) -> list[Any]:
    """The values at dotted ``path`` (``a.b``, ``items[].c``); missing ones are left out."""
    found = [document]
    for part in path.split("."):
        each = part.endswith("[]")
        key = part[:-2] if each else part
        step = []
        for item in found:
            if isinstance(item, dict) and key in item:
                step.append(item[key])
        if each:
            step = [v for lst in step if isinstance(lst, list) for v in lst]
        found = step
    return found


_TYPES = {"int": int, "str": str, "list": list, "dict": dict, "bool": bool}


def problems(document: Any, spec: dict[str, Any]) -> list[str]:
    """How ``document`` breaks the ``required`` / ``enums`` / ``types`` rules of ``spec``."""
    found = []
    for path in spec.get("required", []):
        parent, _, leaf = path.rpartition(".")
        holders = values(document, parent) if parent else [document]
        if not holders:
            found.append(f"{path}: missing")
        for holder in holders:
            if not isinstance(holder, dict) or leaf not in holder:
                found.append(f"{path}: missing")
    for path, allowed in spec.get("enums", {}).items():
        for value in values(document, path):
            if value is not None and value not in allowed:
                found.append(f"{path}: {value!r} is not one of {allowed}")
    for path, name in spec.get("types", {}).items():
        for value in values(document, path):
            wanted = _TYPES[name]
            if value is not None and (
                not isinstance(value, wanted) or (wanted is int and isinstance(value, bool))
            ):
                found.append(f"{path}: {value!r} is not {name}")
    return found

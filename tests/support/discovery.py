"""Google's own description of the Wallet API: the walletobjects v1
discovery document that google-api-python-client ships, and a strict check
of a body against one of its schemas.

The check refuses what Google's servers refuse or silently drop: a property
the schema does not have, a value of the wrong type, an int64 that is not a
decimal string, an int32 out of range, a value outside an enum, and a
property the document calls deprecated.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

_INT64 = re.compile(r"-?[0-9]{1,19}")
INT32 = (-(2**31), 2**31 - 1)


@lru_cache(maxsize=1)
def discovery() -> dict[str, Any]:
    path = resources.files("googleapiclient").joinpath("discovery_cache/documents/walletobjects.v1.json")
    return json.loads(path.read_text(encoding="utf-8"))


def method(resource: str, name: str) -> dict[str, Any]:
    """A method of the document, e.g. ("loyaltyobject", "patch")."""
    return discovery()["resources"][resource]["methods"][name]


def problems(schema: str | dict[str, Any], value: Any, where: str = "$") -> list[str]:
    """Everything wrong with ``value`` as an instance of ``schema`` (a schema
    name or a schema); empty when it fits."""
    schemas = discovery()["schemas"]
    if isinstance(schema, str):
        schema = {"$ref": schema}
    if "$ref" in schema:
        return problems(schemas[schema["$ref"]], value, where)
    kind = schema.get("type")
    found: list[str] = []
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                spec = properties[key]
                if spec.get("description", "").lower().startswith("deprecated"):
                    found.append(f"{where}.{key}: deprecated")
                found.extend(problems(spec, item, f"{where}.{key}"))
            elif extra is not None:
                found.extend(problems(extra, item, f"{where}.{key}"))
            else:
                found.append(f"{where}.{key}: no such property")
        return found
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected an array, got {type(value).__name__}"]
        for index, item in enumerate(value):
            found.extend(problems(schema["items"], item, f"{where}[{index}]"))
        return found
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected a string, got {type(value).__name__}"]
        if schema.get("format") in ("int64", "uint64") and not _INT64.fullmatch(value):
            found.append(f"{where}: {value!r} is not an int64 as a decimal string")
        if "enum" in schema and value not in schema["enum"]:
            found.append(f"{where}: {value!r} is not one of {schema['enum']}")
        return found
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{where}: expected an integer, got {type(value).__name__}"]
        if schema.get("format") == "int32" and not INT32[0] <= value <= INT32[1]:
            found.append(f"{where}: {value} is out of int32 range")
        return found
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return [f"{where}: expected a number, got {type(value).__name__}"]
        return found
    if kind == "boolean":
        if not isinstance(value, bool):
            return [f"{where}: expected a boolean, got {type(value).__name__}"]
        return found
    if kind == "any" or kind is None:
        return found
    return [f"{where}: the document has a type this check does not know: {kind!r}"]


def request_schema(resource: str, name: str) -> str:
    """The name of the schema a method takes as its body."""
    return method(resource, name)["request"]["$ref"]

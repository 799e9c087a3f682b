#!/usr/bin/env python3
"""Reads an OpenAPI document on stdin and writes a stricter copy for schemathesis: every object
schema a success response names directly (or through an array or a property) refuses fields it
does not list (`unevaluatedProperties: false`), so a field the server sends but the document
leaves out fails `response_schema_conformance`. Parts composed with allOf/oneOf (the user
entity's administrator fields) are left open: the schema that composes them closes the whole."""
import json
import sys

document = json.load(sys.stdin)
schemas = document["components"]["schemas"]
closed = set()


def close(schema):
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name not in closed:
            closed.add(name)
            close(schemas[name])
        return
    for part in schema.get("oneOf", []):
        # A nullable answer (`oneOf: [null, $ref]`) closes the schema it names.
        close(part)
    if "items" in schema:
        close(schema["items"])
    if "properties" in schema or "allOf" in schema:
        schema["unevaluatedProperties"] = False
        for prop in schema.get("properties", {}).values():
            close(prop)


for operations in document["paths"].values():
    for operation in operations.values():
        for status, response in operation.get("responses", {}).items():
            if status.startswith("2"):
                for content in response.get("content", {}).values():
                    close(content.get("schema", {}))

# A closed schema inside another's allOf would refuse its siblings' fields (unevaluated from its
# own point of view): there, it is used as an open copy.
for schema in schemas.values():
    for index, part in enumerate(schema.get("allOf", [])):
        name = part.get("$ref", "").rsplit("/", 1)[-1]
        if name in closed:
            open_copy = json.loads(json.dumps(schemas[name]))
            open_copy.pop("unevaluatedProperties", None)
            schema["allOf"][index] = open_copy

json.dump(document, sys.stdout, indent=2)
print(f"closed {len(closed)} response schemas", file=sys.stderr)

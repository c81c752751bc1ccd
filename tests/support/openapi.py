"""The operations every API documents, read from its OpenAPI document as a client sees them."""

from accesscontrol.api.api import APIS


def documented_operations():
    """(path, METHOD, operation, component schemas) for each operation of each API."""
    for each in APIS:
        document = each.get_openapi_schema()
        components = document.get("components", {}).get("schemas", {})
        for path, item in document["paths"].items():
            for method, operation in item.items():
                yield path, method.upper(), operation, components


def json_body_schema(operation):
    """The schema of the operation's JSON request body, or None when it takes none."""
    content = operation.get("requestBody", {}).get("content", {})
    return content.get("application/json", {}).get("schema")

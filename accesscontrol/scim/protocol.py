"""The SCIM wire format (RFC 7643/7644): request bodies read into plain values, PATCH operations
applied the way Okta and Microsoft Entra ID send them, filters, and resources written back.

Nothing here touches the database; scim/services.py does, with what this module made of the
request. Attribute names are case-insensitive (RFC 7643 §2.1), as are PATCH `op` values in
practice (Entra sends "Replace"), and Entra sends booleans as the strings "True"/"False".
"""

import json
import re
import uuid

from accesscontrol.scim.errors import invalid_filter, invalid_path, invalid_syntax, invalid_value

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

MAX_TEXT = 255
MAX_COUNT = 200  # the most resources one page lists (ServiceProviderConfig says so)

# The User attributes we read (canonical spelling); the rest of the core schema is kept as sent.
USER_READ = ("userName", "externalId", "displayName", "name", "emails", "active")
USER_KEPT = (
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "entitlements",
    "roles",
    "x509Certificates",
    ENTERPRISE_SCHEMA,
)
# Accepted and never stored: passwords are not the identity provider's to set here (people sign
# in through it), groups are changed through /Groups, the rest is the server's.
USER_IGNORED = ("password", "groups", "id", "meta", "schemas")
USER_ATTRIBUTES = {a.lower(): a for a in USER_READ + USER_KEPT + USER_IGNORED}
NAME_PARTS = ("givenName", "familyName", "formatted", "middleName", "honorificPrefix")

GROUP_READ = ("displayName", "externalId", "members")
GROUP_IGNORED = ("id", "meta", "schemas")
GROUP_ATTRIBUTES = {a.lower(): a for a in GROUP_READ + GROUP_IGNORED}


# --- reading bodies ----------------------------------------------------------------------------


def require_schemas(body, *allowed, required):
    if not isinstance(body, dict):
        raise invalid_syntax("The body must be a JSON object.")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise invalid_syntax(f'"schemas" must be a list naming {required}.')
    if required not in schemas:
        raise invalid_syntax(f'"schemas" must name {required}.')
    unknown = [s for s in schemas if s not in allowed]
    if unknown:
        raise invalid_value(f"Unknown schema {unknown[0]!r}.")


def _canonical(body: dict, known: dict, what: str) -> dict:
    out = {}
    for key, value in body.items():
        name = known.get(str(key).lower())
        if name is None:
            raise invalid_path(f"{what} has no attribute {key!r}.")
        out[name] = value
    return out


def _text(value, name, *, required=False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise invalid_value(f"{name} must be a string.")
    value = value.strip()
    if required and not value:
        raise invalid_value(f"{name} is required.")
    if len(value) > MAX_TEXT:
        raise invalid_value(f"{name} is longer than {MAX_TEXT} characters.")
    return value


def boolean(value, name="active") -> bool:
    """A SCIM boolean, or the strings "true"/"false" in any case (Entra sends "False")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise invalid_value(f"{name} must be true or false.")


def user_state(body: dict) -> dict:
    """A User body (POST, PUT, or a resource after PATCH) as the values the services take."""
    attrs = _canonical(body, USER_ATTRIBUTES, "User")
    name = attrs.get("name") or {}
    if not isinstance(name, dict):
        raise invalid_value("name must be an object.")
    name = {part: name[key] for key in name for part in NAME_PARTS if key.lower() == part.lower()}
    emails = attrs.get("emails") or []
    if not isinstance(emails, list) or not all(
        isinstance(e, dict) and isinstance(e.get("value"), str) for e in emails
    ):
        raise invalid_value("emails must be a list of objects with a string value.")
    state = {
        "user_name": _text(attrs.get("userName"), "userName", required=True),
        "external_id": _text(attrs.get("externalId"), "externalId"),
        "display_name": _text(attrs.get("displayName"), "displayName"),
        "given_name": _text(name.get("givenName"), "name.givenName"),
        "family_name": _text(name.get("familyName"), "name.familyName"),
        "emails": [
            {k: v for k, v in e.items() if k in ("value", "type", "primary", "display")}
            for e in emails
        ],
        "active": boolean(attrs["active"]) if "active" in attrs else True,
        "attributes": {k: attrs[k] for k in USER_KEPT if attrs.get(k) not in (None, "", [])},
    }
    for email in state["emails"]:
        _text(email["value"], "emails.value")
    return state


def primary_email(state: dict) -> str:
    """The address the person's account has: the primary email, the first one, or userName."""
    emails = state["emails"]
    chosen = next((e for e in emails if e.get("primary") is True), emails[0] if emails else None)
    return (chosen["value"] if chosen else state["user_name"]).strip()


def group_state(body: dict) -> dict:
    attrs = _canonical(body, GROUP_ATTRIBUTES, "Group")
    return {
        "display_name": _text(attrs.get("displayName"), "displayName", required=True),
        "external_id": _text(attrs.get("externalId"), "externalId"),
        "member_ids": member_ids(attrs.get("members") or []),
    }


def member_ids(members) -> set[str]:
    if not isinstance(members, list):
        raise invalid_value("members must be a list.")
    ids = set()
    for member in members:
        value = member.get("value") if isinstance(member, dict) else None
        if not isinstance(value, str):
            raise invalid_value("Each member needs a value: the id of a User.")
        ids.add(value.strip())
    return ids


# --- PATCH -------------------------------------------------------------------------------------

# attr, attr.sub, attr[sub eq "x"], attr[sub eq "x"].sub, optionally after a schema URN and ":".
PATH = re.compile(
    r"""^(?:(?P<urn>urn:[\w:.-]+):)?(?P<attr>[A-Za-z$][\w$-]*)
        (?:\[(?P<filter>[^\]]*)\])?(?:\.(?P<sub>[A-Za-z$][\w$-]*))?$""",
    re.VERBOSE,
)
VALUE_FILTER = re.compile(
    r'^\s*(?P<attr>[A-Za-z][\w.]*)\s+eq\s+(?P<value>"(?:[^"\\]|\\.)*")\s*$', re.I
)


def patch_operations(body) -> list[dict]:
    require_schemas(body, PATCH_SCHEMA, required=PATCH_SCHEMA)
    operations = {str(k).lower(): v for k, v in body.items()}.get("operations")
    if not isinstance(operations, list) or not operations:
        raise invalid_syntax('"Operations" must be a non-empty list.')
    cleaned = []
    for op in operations:
        if not isinstance(op, dict):
            raise invalid_syntax("Each operation must be an object.")
        op = {str(k).lower(): v for k, v in op.items()}
        kind = op.get("op")
        if not isinstance(kind, str) or kind.lower() not in ("add", "replace", "remove"):
            raise invalid_syntax('"op" must be add, replace or remove.')
        path = op.get("path")
        if path is not None and (not isinstance(path, str) or not path.strip()):
            raise invalid_path('"path" must be a non-empty string.')
        if kind.lower() != "remove" and "value" not in op:
            raise invalid_value(f"The {kind} operation needs a value.")
        cleaned.append(
            {"op": kind.lower(), "path": path and path.strip(), "value": op.get("value")}
        )
    return cleaned


def parse_path(path: str, known: dict, what: str):
    match = PATH.match(path)
    if match is None:
        raise invalid_path(f"Cannot read the path {path!r}.")
    urn, attr, filter_text, sub = match["urn"], match["attr"], match["filter"], match["sub"]
    if urn and urn.lower() == ENTERPRISE_SCHEMA.lower() and known is USER_ATTRIBUTES:
        return ENTERPRISE_SCHEMA, None, attr  # an enterprise attribute: sub of the extension
    if urn and urn.lower() not in (USER_SCHEMA.lower(), GROUP_SCHEMA.lower()):
        raise invalid_path(f"Unknown schema in the path {path!r}.")
    name = known.get(attr.lower())
    if name is None or name in ("id", "meta", "schemas"):
        raise invalid_path(f"{what} has no attribute {attr!r} that can be changed.")
    condition = None
    if filter_text is not None:
        found = VALUE_FILTER.match(filter_text)
        if found is None:
            raise invalid_filter(f"Cannot read the filter [{filter_text}] of {path!r}.")
        condition = (found["attr"], json.loads(found["value"]))
    return name, condition, sub


def _matches(item, condition) -> bool:
    attr, expected = condition
    if not isinstance(item, dict):
        return False
    value = next((v for k, v in item.items() if k.lower() == attr.lower()), None)
    return isinstance(value, str) and value.lower() == str(expected).lower()


def _set_sub(container: dict, sub: str, value):
    key = next((k for k in container if k.lower() == sub.lower()), sub)
    container[key] = value


def _merge(resource: dict, value: dict, known: dict, what: str):
    """A path-less add/replace: each attribute of `value` set, complex ones merged."""
    if not isinstance(value, dict):
        raise invalid_value("An operation without a path needs an object as its value.")
    for key, item in value.items():
        if ":" in key and key.lower().startswith(ENTERPRISE_SCHEMA.lower() + ":"):
            # Entra spells an enterprise attribute as its full path inside the value.
            apply_operation(resource, {"op": "replace", "path": key, "value": item}, known, what)
            continue
        name = known.get(str(key).lower())
        if name is None:
            raise invalid_path(f"{what} has no attribute {key!r}.")
        if name in ("id", "meta", "schemas"):
            continue  # Okta repeats the id in path-less replaces of a Group
        current = resource.get(name)
        if isinstance(current, dict) and isinstance(item, dict):
            current.update(item)
        else:
            resource[name] = item


def apply_operation(resource: dict, op: dict, known: dict, what: str):
    kind, path, value = op["op"], op["path"], op["value"]
    if path is None:
        if kind == "remove":
            raise ScimNoTarget()
        _merge(resource, value, known, what)
        return
    name, condition, sub = parse_path(path, known, what)
    if name == "members" and known is GROUP_ATTRIBUTES:
        _apply_members(resource, kind, condition, sub, value)
        return
    if condition is not None:
        items = resource.get(name) or []
        if not isinstance(items, list):
            raise invalid_path(f"{name} is not multi-valued.")
        matching = [i for i in items if _matches(i, condition)]
        if kind == "remove":
            if sub is None:
                resource[name] = [i for i in items if not _matches(i, condition)]
            else:
                for item in matching:
                    item.pop(next((k for k in item if k.lower() == sub.lower()), sub), None)
            return
        if not matching:
            # Entra adds emails[type eq "work"].value to a user that has no work email yet.
            matching = [{condition[0]: condition[1]}]
            resource[name] = [*items, *matching]
        for item in matching:
            if sub is None:
                if not isinstance(value, dict):
                    raise invalid_value(f"{path} needs an object as its value.")
                item.update(value)
            else:
                _set_sub(item, sub, value)
        return
    if sub is not None:
        container = resource.get(name)
        if container is None:
            if kind == "remove":
                return
            container = resource[name] = {}
        if not isinstance(container, dict):
            raise invalid_path(f"{name} has no sub-attributes.")
        if kind == "remove":
            container.pop(next((k for k in container if k.lower() == sub.lower()), sub), None)
        else:
            _set_sub(container, sub, value)
        return
    if kind == "remove":
        resource.pop(name, None)
    elif kind == "add" and isinstance(resource.get(name), list) and isinstance(value, list):
        resource[name] = [*resource[name], *value]
    elif isinstance(resource.get(name), dict) and isinstance(value, dict):
        resource[name].update(value)
    else:
        resource[name] = value


def _apply_members(resource, kind, condition, sub, value):
    members = list(resource.get("members") or [])
    if sub is not None:
        raise invalid_path("Members are changed whole: add or remove them by value.")
    if kind == "remove":
        if condition is not None:
            resource["members"] = [m for m in members if not _matches(m, condition)]
        elif value is None:
            resource["members"] = []
        else:
            gone = member_ids(value if isinstance(value, list) else [value])
            resource["members"] = [m for m in members if m.get("value") not in gone]
        return
    if condition is not None:
        raise invalid_path("Add or replace members without a filter.")
    new = value if isinstance(value, list) else [value]
    member_ids(new)  # each one well formed
    resource["members"] = new if kind == "replace" else [*members, *new]


class ScimNoTarget(Exception):
    """A remove without a path (RFC 7644 §3.5.2.2: 400 noTarget)."""


def patched(resource: dict, operations, known, what) -> dict:
    from accesscontrol.scim.errors import ScimError

    resource = json.loads(json.dumps(resource))  # a deep copy the operations may change
    for op in operations:
        try:
            apply_operation(resource, op, known, what)
        except ScimNoTarget:
            raise ScimError(400, "A remove operation needs a path.", "noTarget") from None
    return resource


# --- filters and pages -------------------------------------------------------------------------

FILTER = re.compile(r'^\s*(?P<attr>[A-Za-z][\w.]*)\s+eq\s+(?P<value>"(?:[^"\\]|\\.)*")\s*$', re.I)


def parse_filter(text, allowed: dict) -> tuple[str, str] | None:
    """(field, value) of `<attribute> eq "<value>"`, the one form supported; None for none."""
    if text is None or text == "":
        return None
    match = FILTER.match(text)
    if match is None:
        raise invalid_filter(
            'Only filters of the form <attribute> eq "<value>" are supported, on '
            + ", ".join(sorted(allowed.values()))
            + "."
        )
    field = allowed.get(match["attr"].lower())
    if field is None:
        raise invalid_filter(f"Filtering on {match['attr']!r} is not supported.")
    try:
        value = json.loads(match["value"])
    except ValueError:
        raise invalid_filter("The filter's value is not a valid string.") from None
    if "\x00" in value:
        raise invalid_filter("The filter's value cannot contain NUL.")
    return field, value


def page_bounds(params) -> tuple[int, int]:
    """(startIndex, count): 1-based start, count clamped to 0..MAX_COUNT (RFC 7644 §3.4.2.4)."""

    def integer(name, default):
        raw = params.get(name)
        if raw in (None, ""):
            return default
        try:
            return int(raw)
        except ValueError:
            raise invalid_value(f"{name} must be an integer.") from None

    start = max(1, integer("startIndex", 1))
    count = min(MAX_COUNT, max(0, integer("count", MAX_COUNT)))
    return start, count


def list_response(resources, total, start) -> dict:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


# --- writing resources -------------------------------------------------------------------------


def etag(version: int) -> str:
    return f'W/"{version}"'


def _meta(kind, obj, location) -> dict:
    return {
        "resourceType": kind,
        "created": obj.created_at.isoformat(),
        "lastModified": obj.updated_at.isoformat(),
        "location": location,
        "version": etag(obj.version),
    }


def user_resource(scim_user, base_url, groups=()) -> dict:
    name = {
        k: v
        for k, v in (("givenName", scim_user.given_name), ("familyName", scim_user.family_name))
        if v
    }
    resource = {
        "schemas": [USER_SCHEMA],
        "id": str(scim_user.id),
        "userName": scim_user.user_name,
        "active": scim_user.active,
    }
    if scim_user.external_id:
        resource["externalId"] = scim_user.external_id
    if scim_user.display_name:
        resource["displayName"] = scim_user.display_name
    if name:
        resource["name"] = name
    if scim_user.emails:
        resource["emails"] = scim_user.emails
    for key, value in (scim_user.attributes or {}).items():
        resource[key] = value
    if ENTERPRISE_SCHEMA in resource:
        resource["schemas"].append(ENTERPRISE_SCHEMA)
    if groups:
        resource["groups"] = [
            {"value": str(g.id), "display": g.display_name, "$ref": f"{base_url}Groups/{g.id}"}
            for g in groups
        ]
    resource["meta"] = _meta("User", scim_user, f"{base_url}Users/{scim_user.id}")
    return resource


def group_resource(group, base_url, members=None) -> dict:
    resource = {"schemas": [GROUP_SCHEMA], "id": str(group.id), "displayName": group.display_name}
    if group.external_id:
        resource["externalId"] = group.external_id
    if members is not None:
        resource["members"] = [
            {"value": str(m.id), "display": m.user_name, "$ref": f"{base_url}Users/{m.id}"}
            for m in members
        ]
    resource["meta"] = _meta("Group", group, f"{base_url}Groups/{group.id}")
    return resource


def as_uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None

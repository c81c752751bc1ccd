"""The SCIM 2.0 endpoints (RFC 7644) at /scim/v2/: each parses, calls one service or selector,
answers application/scim+json. Every query is scoped to the token's organization: another
organization's id is a 404 like an id that does not exist."""

import functools

from django.core.exceptions import ValidationError
from django.urls import reverse
from scim2_models import Context, EnterpriseUser, Group, ResourceType, User

from accesscontrol.console import errors_of
from accesscontrol.scim import errors, protocol, selectors, services
from accesscontrol.scim.auth import scim_endpoint, scim_response
from accesscontrol.scim.errors import ScimError
from accesscontrol.storable import JsonTooDeep, JsonUnstorable, load_json

USER_FILTERS = {
    "username": "user_name",
    "externalid": "external_id",
    "displayname": "display_name",
    "id": "pk",
    "emails.value": "emails__contains",
    "emails": "emails__contains",
}
GROUP_FILTERS = {"displayname": "display_name", "externalid": "external_id", "id": "pk"}


def base_url(request) -> str:
    return request.build_absolute_uri(reverse("scim-root"))


def _json(request):
    if not request.body:
        raise errors.invalid_syntax("The request needs a JSON body.")
    try:
        return load_json(request.body)
    except (JsonTooDeep, JsonUnstorable) as exc:
        raise errors.invalid_value(str(exc)) from None
    except ValueError:
        raise errors.invalid_syntax("The body is not valid JSON.") from None


def _if_match(request) -> int | None:
    """The version an If-Match names (W/"3" or "3"); None when absent or "*"."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    tag = header.strip().removeprefix("W/").strip('"')
    try:
        return int(tag)
    except ValueError:
        raise errors.version_mismatch() from None


def _refusals(service):
    """A core service's refusal (ValidationError: a rule, the last admin...) as a SCIM 400."""

    @functools.wraps(service)
    def call(*args, **kwargs):
        try:
            return service(*args, **kwargs)
        except ValidationError as exc:
            raise ScimError(400, errors_of(exc) or "Refused.", "invalidValue") from None

    return call


def _filtered(queryset, request, allowed):
    found = protocol.parse_filter(request.GET.get("filter"), allowed)
    if found is None:
        return queryset
    field, value = found
    if field == "pk":
        value = protocol.as_uuid(value)
        return queryset.filter(pk=value) if value else queryset.none()
    if field == "emails__contains":
        return queryset.filter(emails__contains=[{"value": value}])
    return queryset.filter(**{f"{field}__iexact": value})


def _page(request, queryset, render):
    start, count = protocol.page_bounds(request.GET)
    total = queryset.count()
    rows = list(queryset[start - 1 : start - 1 + count]) if count else []
    return scim_response(protocol.list_response([render(r) for r in rows], total, start))


def _user(request, scim_id):
    scim_user = selectors.scim_users(request.actor).filter(pk=protocol.as_uuid(scim_id)).first()
    if protocol.as_uuid(scim_id) is None or scim_user is None:
        raise errors.not_found("User")
    return scim_user


def _group(request, scim_id, with_members=True):
    found = selectors.scim_groups(request.actor, with_members)
    group = (
        found.filter(pk=protocol.as_uuid(scim_id)).first() if protocol.as_uuid(scim_id) else None
    )
    if group is None:
        raise errors.not_found("Group")
    return group


def _user_out(request, scim_user, status=200):
    fresh = selectors.scim_users(request.actor).get(pk=scim_user.pk)
    body = protocol.user_resource(fresh, base_url(request), fresh.groups.all())
    return scim_response(
        body, status, {"ETag": body["meta"]["version"], "Location": body["meta"]["location"]}
    )


def _group_out(request, group, status=200):
    fresh = _group(request, group.pk)
    body = protocol.group_resource(fresh, base_url(request), fresh.members.all())
    return scim_response(
        body, status, {"ETag": body["meta"]["version"], "Location": body["meta"]["location"]}
    )


# --- Users -------------------------------------------------------------------------------------


@scim_endpoint("GET", "POST")
def users(request):
    if request.method == "POST":
        body = _json(request)
        protocol.require_schemas(
            body, protocol.USER_SCHEMA, protocol.ENTERPRISE_SCHEMA, required=protocol.USER_SCHEMA
        )
        scim_user = _refusals(services.provision_user)(
            actor=request.actor, state=protocol.user_state(body)
        )
        return _user_out(request, scim_user, 201)
    found = _filtered(selectors.scim_users(request.actor), request, USER_FILTERS)
    root = base_url(request)
    return _page(request, found, lambda u: protocol.user_resource(u, root, u.groups.all()))


@scim_endpoint("GET", "PUT", "PATCH", "DELETE")
def user(request, scim_id):
    scim_user = _user(request, scim_id)
    if request.method == "GET":
        return _user_out(request, scim_user)
    version = _if_match(request)
    if request.method == "DELETE":
        _refusals(services.delete_user)(actor=request.actor, scim_user=scim_user, version=version)
        return scim_response(None, 204)
    body = _json(request)
    if request.method == "PUT":
        protocol.require_schemas(
            body, protocol.USER_SCHEMA, protocol.ENTERPRISE_SCHEMA, required=protocol.USER_SCHEMA
        )
        state = protocol.user_state(body)
    else:
        operations = protocol.patch_operations(body)
        current = protocol.user_resource(scim_user, base_url(request))
        state = protocol.user_state(
            protocol.patched(current, operations, protocol.USER_ATTRIBUTES, "User")
        )
    scim_user = _refusals(services.update_user)(
        actor=request.actor, scim_user=scim_user, state=state, version=version
    )
    return _user_out(request, scim_user)


# --- Groups ------------------------------------------------------------------------------------


def _without_members(request) -> bool:
    excluded = request.GET.get("excludedAttributes", "")
    return "members" in {a.strip().lower() for a in excluded.split(",")}


@scim_endpoint("GET", "POST")
def groups(request):
    if request.method == "POST":
        body = _json(request)
        protocol.require_schemas(body, protocol.GROUP_SCHEMA, required=protocol.GROUP_SCHEMA)
        group = _refusals(services.create_group)(
            actor=request.actor, state=protocol.group_state(body)
        )
        return _group_out(request, group, 201)
    bare = _without_members(request)
    found = _filtered(selectors.scim_groups(request.actor, not bare), request, GROUP_FILTERS)
    root = base_url(request)
    return _page(
        request,
        found,
        lambda g: protocol.group_resource(g, root, None if bare else g.members.all()),
    )


@scim_endpoint("GET", "PUT", "PATCH", "DELETE")
def group(request, scim_id):
    found = _group(request, scim_id)
    if request.method == "GET":
        if _without_members(request):
            body = protocol.group_resource(found, base_url(request))
            return scim_response(body, headers={"ETag": body["meta"]["version"]})
        return _group_out(request, found)
    version = _if_match(request)
    if request.method == "DELETE":
        _refusals(services.delete_group)(actor=request.actor, group=found, version=version)
        return scim_response(None, 204)
    body = _json(request)
    if request.method == "PUT":
        protocol.require_schemas(body, protocol.GROUP_SCHEMA, required=protocol.GROUP_SCHEMA)
        state = protocol.group_state(body)
    else:
        operations = protocol.patch_operations(body)
        current = protocol.group_resource(found, base_url(request), found.members.all())
        state = protocol.group_state(
            protocol.patched(current, operations, protocol.GROUP_ATTRIBUTES, "Group")
        )
    updated = _refusals(services.update_group)(
        actor=request.actor, group=found, state=state, version=version
    )
    return _group_out(request, updated)


# --- discovery ---------------------------------------------------------------------------------


def _schemas():
    return [
        model.to_schema().model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        for model in (User, Group, EnterpriseUser)
    ]


def _resource_types():
    return [
        ResourceType.from_resource(model).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        for model in (User[EnterpriseUser], Group)
    ]


def _located(documents, request, kind):
    root = base_url(request)
    for document in documents:
        document["meta"] = {"resourceType": kind, "location": f"{root}{kind}s/{document['id']}"}
    return documents


def _discovery_list(documents, request, kind):
    """/ResourceTypes and /Schemas (RFC 7644 §4): every document, located, in one page."""
    found = _located(documents, request, kind)
    return scim_response(protocol.list_response(found, len(found), 1))


def _discovery_one(documents, request, kind, scim_id):
    """/ResourceTypes/<id> and /Schemas/<id>: the one document with that id, or a 404."""
    match = next((d for d in _located(documents, request, kind) if d["id"] == scim_id), None)
    if match is None:
        raise errors.not_found(kind)
    return scim_response(match)


@scim_endpoint("GET")
def service_provider_config(request):
    from django.conf import settings

    return scim_response(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": f"{settings.SITE_URL}/",
            "patch": {"supported": True},
            "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": True, "maxResults": protocol.MAX_COUNT},
            "changePassword": {"supported": False},
            "sort": {"supported": False},
            "etag": {"supported": True},
            "authenticationSchemes": [
                {
                    "type": "oauthbearertoken",
                    "name": "OAuth Bearer Token",
                    "description": "The organization's SCIM token, from Settings → Provisioning.",
                    "primary": True,
                }
            ],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": f"{base_url(request)}ServiceProviderConfig",
            },
        }
    )


@scim_endpoint("GET")
def resource_types(request):
    return _discovery_list(_resource_types(), request, "ResourceType")


@scim_endpoint("GET")
def resource_type(request, scim_id):
    return _discovery_one(_resource_types(), request, "ResourceType", scim_id)


@scim_endpoint("GET")
def schemas(request):
    return _discovery_list(_schemas(), request, "Schema")


@scim_endpoint("GET")
def schema(request, scim_id):
    return _discovery_one(_schemas(), request, "Schema", scim_id)


@scim_endpoint("GET")
def root(request):
    """The base URL itself: what it serves."""
    raise errors.not_found("resource here: use /Users, /Groups or the discovery endpoints")

"""Requests to the REST API the way an SDK sends them."""

from tests.factories import system_role


def api_call(
    client, method, path, key=None, *, tenant=None, json=None, bearer=False, root=False, **environ
):
    """One API request the way an SDK makes it: key in a header, JSON body.

    At /api/v1<path>, or with `root` at /<path>, where the LangSmith SDK sends it. `environ`:
    more WSGI variables, e.g. REMOTE_ADDR or HTTP_X_FORWARDED_FOR.
    """
    headers = {}
    if key is not None:
        headers["Authorization" if bearer else "X-API-Key"] = f"Bearer {key}" if bearer else key
    if tenant is not None:
        headers["X-Tenant-Id"] = str(tenant)
    kwargs = {"headers": headers, **environ}
    if json is not None:
        kwargs.update(data=json, content_type="application/json")
    return getattr(client, method.lower())(path if root else f"/api/v1{path}", **kwargs)


def api_set_member_role(client, key, membership, role):
    """The API's way to give a workspace membership a role: a system role's name, or an id."""
    role_id = system_role(role).pk if isinstance(role, str) else role
    path = f"/workspaces/current/members/{membership.pk}"
    return api_call(client, "PATCH", path, key, json={"role_id": str(role_id)})

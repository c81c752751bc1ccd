"""The server-rendered console: sign-in, the gate on every page, members lists, security headers."""

import json
import re
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accesscontrol.audit.models import AuditEvent
from tests.factories import PASSWORD, UserFactory, add_member, system_role

ACME = {"org_slug": "acme"}
PRODUCTION = {"org_slug": "acme", "workspace_slug": "production"}

PAGES = {
    "org-overview": ACME,
    "org-members": ACME,
    "workspace-home": PRODUCTION,
    "workspace-members": PRODUCTION,
}
ORG_PAGES = ("org-overview", "org-members")
WORKSPACE_PAGES = ("workspace-home", "workspace-members")

# What each persona gets on each acme page: organization:read for org pages, workspaces:read
# for workspace pages; the outsider (admin of another org) must not learn that acme exists.
EXPECTED_STATUS = {
    "org_admin": {"org": 200, "workspace": 200},
    "workspace_admin": {"org": 200, "workspace": 200},
    "editor": {"org": 200, "workspace": 200},
    "viewer": {"org": 200, "workspace": 200},
    "annotator": {"org": 200, "workspace": 200},
    "member_without_workspace": {"org": 200, "workspace": 403},
    "org_viewer": {"org": 200, "workspace": 200},
    "outsider": {"org": 404, "workspace": 404},
}

UNKNOWN_PAGES = [
    ("org-overview", {"org_slug": "no-such-org"}),
    ("org-members", {"org_slug": "no-such-org"}),
    ("workspace-home", {"org_slug": "acme", "workspace_slug": "no-such-ws"}),
    ("workspace-members", {"org_slug": "acme", "workspace_slug": "no-such-ws"}),
    ("workspace-home", {"org_slug": "no-such-org", "workspace_slug": "production"}),
    # A real workspace slug, reached through the wrong organization.
    ("workspace-home", {"org_slug": "globex", "workspace_slug": "production"}),
    ("workspace-members", {"org_slug": "acme", "workspace_slug": "default"}),
]


def url(name, **kwargs):
    return reverse(name, kwargs=kwargs or None)


def page_url(name):
    return url(name, **PAGES[name])


def member_rows(body: str) -> int:
    """Member rows in a members page: each row carries its membership id."""
    return len(re.findall(r'<tr id="(?:ws-)?member-', body))


def text_of(response) -> str:
    return response.content.decode()


class PageParser(HTMLParser):
    """Collects what the security tests look at: scripts, style attributes, forms, <body>."""

    def __init__(self):
        super().__init__()
        self.scripts = []  # [attrs, body]
        self.style_attributes = []
        self.style_elements = 0
        self.event_handlers = []  # inline onclick= and friends, also blocked by the CSP
        self.forms = []  # {"attrs": ..., "inputs": [...]}
        self.body_attrs = None
        self._in_script = None
        self._form = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "style" in attrs:
            self.style_attributes.append((tag, attrs["style"]))
        self.event_handlers += [(tag, name) for name in attrs if name.startswith("on")]
        if tag == "script":
            self._in_script = [attrs, ""]
            self.scripts.append(self._in_script)
        elif tag == "style":
            self.style_elements += 1
        elif tag == "body":
            self.body_attrs = attrs
        elif tag == "form":
            self._form = {"attrs": attrs, "inputs": []}
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None:
            self._form["inputs"].append(attrs)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None
        elif tag == "form":
            self._form = None

    def handle_data(self, data):
        if self._in_script is not None:
            self._in_script[1] += data


def parse(response) -> PageParser:
    parser = PageParser()
    parser.feed(text_of(response))
    parser.close()
    return parser


def without_csrf_tokens(html: str) -> str:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)
    return re.sub(r"X-CSRFToken(&quot;|\"): (&quot;|\")[^&\"]*", "", html)


# --- sign in and out ---------------------------------------------------------------------


def redirect_for(user, client, path):
    """Where `path` sends `user` (it must send them somewhere)."""
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 302
    return response["Location"]


def test_login_page_is_public(client, db):
    response = client.get(url("login"))
    assert response.status_code == 200
    assert 'name="password"' in text_of(response)
    assert 'action="/login/"' in text_of(response)


def test_signed_in_user_visiting_login_goes_home(client, world):
    assert redirect_for(world.editor, client, url("login")) == url("home")


def test_login_with_right_password_lands_on_first_workspace_home(client, world):
    response = client.post(
        url("login"), {"login": world.editor.email, "password": PASSWORD}, follow=True
    )
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == page_url("workspace-home")
    assert response.wsgi_request.user == world.editor
    assert client.session["_auth_user_id"] == str(world.editor.pk)


def test_login_cycles_the_session_key(client, world):
    client.get(url("login"))
    client.session.save()
    before = client.session.session_key
    client.post(url("login"), {"login": world.editor.email, "password": PASSWORD})
    assert client.session.session_key != before


def test_wrong_password_is_refused_with_an_error_and_audited(client, world):
    secret = "not-the-password-9f3k"
    response = client.post(url("login"), {"login": world.editor.email, "password": secret})

    assert response.status_code == 400
    body = text_of(response)
    assert 'role="alert"' in body
    assert "Please enter a correct" in body
    assert secret not in body
    assert "_auth_user_id" not in client.session

    events = list(AuditEvent.objects.filter(action="login.failed"))
    assert len(events) == 1
    event = events[0]
    assert event.target_label == world.editor.email
    assert event.actor_kind == "system"
    assert event.request_id
    stored = json.dumps(
        {
            field.name: str(getattr(event, field.attname))
            for field in AuditEvent._meta.concrete_fields
        }
    )
    assert secret not in stored


def test_wrong_password_for_unknown_email_is_also_audited(client, db):
    response = client.post(url("login"), {"login": "nobody@x.test", "password": "whatever-1"})
    assert response.status_code == 400
    assert AuditEvent.objects.filter(action="login.failed", target_label="nobody@x.test").exists()


def test_successful_login_writes_no_login_failed_event(client, world):
    client.post(url("login"), {"login": world.editor.email, "password": PASSWORD})
    assert not AuditEvent.objects.filter(action="login.failed").exists()


def test_login_honours_a_same_host_next(client, world):
    target = page_url("org-members")
    response = client.post(
        url("login"), {"login": world.editor.email, "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302
    assert response["Location"] == target


def test_login_honours_next_from_the_query_string(client, world):
    target = page_url("workspace-members")
    response = client.post(
        f"{url('login')}?next={target}",
        {"login": world.editor.email, "password": PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == target


@pytest.mark.parametrize(
    "evil",
    ["https://evil.test/", "//evil.test/", "http://evil.test/o/acme/", "https:evil.test"],
)
def test_login_ignores_an_external_next(client, world, evil):
    page = client.get(url("login"), {"next": evil})
    assert "evil.test" not in text_of(page)

    response = client.post(
        url("login"), {"login": world.editor.email, "password": PASSWORD, "next": evil}
    )
    assert response.status_code == 302
    assert response["Location"] == url("home")


def test_login_page_carries_a_safe_next_into_the_form(client, db):
    target = page_url("org-members")
    response = client.get(url("login"), {"next": target})
    assert f'name="next" value="{target}"' in text_of(response)


def test_logout_refuses_get(client, world):
    client.force_login(world.editor)
    response = client.get(url("logout"))
    assert response.status_code == 405
    assert client.get(page_url("workspace-home")).status_code == 200


def test_logout_by_post_ends_the_session(client, world):
    client.force_login(world.editor)
    assert client.get(page_url("workspace-home")).status_code == 200

    response = client.post(url("logout"))
    assert response.status_code == 302
    assert response["Location"] == url("login")
    assert "_auth_user_id" not in client.session
    after = client.get(page_url("workspace-home"))
    assert after.status_code == 302
    assert after["Location"].startswith(url("login"))


# --- anonymous visitors ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["home", *PAGES])
def test_anonymous_visitor_is_sent_to_login_with_next(client, world, name):
    target = url("home") if name == "home" else page_url(name)
    response = client.get(target)
    assert response.status_code == 302
    assert response["Location"] == f"{url('login')}?next={target}"


def test_anonymous_visitor_keeps_the_query_string_in_next(client, world):
    response = client.get(page_url("org-members"), {"q": "ann"})
    assert response.status_code == 302
    assert response["Location"] == f"{url('login')}?next=/o/acme/members/%3Fq%3Dann"


# --- home --------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["org_admin", "editor", "viewer", "annotator", "org_viewer"])
def test_home_sends_members_to_a_workspace_home(client, world, persona):
    assert redirect_for(world.persona(persona), client, url("home")) == page_url("workspace-home")


def test_home_sends_member_without_workspace_to_the_org_overview(client, world):
    overview = page_url("org-overview")
    assert redirect_for(world.member_without_workspace, client, url("home")) == overview


def test_home_sends_the_outsider_to_their_own_workspace(client, world):
    globex_home = url("workspace-home", org_slug="globex", workspace_slug="default")
    assert redirect_for(world.outsider, client, url("home")) == globex_home


def test_home_of_a_user_without_organization_shows_the_empty_state(client, db):
    loner = UserFactory()
    client.force_login(loner)
    response = client.get(url("home"))
    assert response.status_code == 200
    body = text_of(response)
    assert "not a member of any organization" in body
    assert loner.email in body


# --- the gate, persona by persona --------------------------------------------------------


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("persona", EXPECTED_STATUS)
def test_every_persona_gets_the_expected_status_on_every_page(client, world, persona, name):
    kind = "org" if name in ORG_PAGES else "workspace"
    client.force_login(world.persona(persona))
    response = client.get(page_url(name))
    assert response.status_code == EXPECTED_STATUS[persona][kind]


@pytest.mark.parametrize("name", WORKSPACE_PAGES)
def test_member_without_workspace_gets_an_explanatory_403(client, world, name):
    client.force_login(world.member_without_workspace)
    response = client.get(page_url(name))
    assert response.status_code == 403
    body = text_of(response)
    assert "<code>workspaces:read</code>" in body
    assert "not a member of this workspace" in body
    assert "production" in body


@pytest.mark.parametrize("name", PAGES)
def test_outsider_cannot_tell_acme_from_an_organization_that_does_not_exist(client, world, name):
    client.force_login(world.outsider)
    response = client.get(page_url(name))
    assert response.status_code == 404
    missing_kwargs = {**PAGES[name], "org_slug": "no-such-org"}
    missing = client.get(url(name, **missing_kwargs))
    assert missing.status_code == 404
    assert without_csrf_tokens(text_of(response)) == without_csrf_tokens(text_of(missing))
    assert "Acme" not in text_of(response)


@pytest.mark.parametrize(("name", "kwargs"), UNKNOWN_PAGES)
@pytest.mark.parametrize("persona", EXPECTED_STATUS)
def test_unknown_org_or_workspace_is_404_for_everyone(client, world, persona, name, kwargs):
    client.force_login(world.persona(persona))
    assert client.get(url(name, **kwargs)).status_code == 404


# --- workspace home: the role and what it allows -----------------------------------------


@pytest.mark.parametrize(
    ("persona", "role", "reason"),
    [
        ("editor", "Editor", "(workspace membership)"),
        ("viewer", "Viewer", "(workspace membership)"),
        ("annotator", "Annotator", "(workspace membership)"),
        ("org_admin", "Admin", "(organization admins are Admin in every workspace)"),
    ],
)
def test_workspace_home_states_the_role_and_why(client, world, persona, role, reason):
    client.force_login(world.persona(persona))
    body = text_of(client.get(page_url("workspace-home")))
    assert f'<strong class="badge badge-role">{role}</strong>' in body
    assert reason in body


def allowed(body, code):
    return f'<span class="perm perm-yes" title="{code}">' in body


def refused(body, code):
    return f'<span class="perm perm-no" title="{code}">' in body


@pytest.mark.parametrize(
    ("persona", "code", "held"),
    [
        ("editor", "datasets:create", True),
        ("viewer", "datasets:create", False),
        ("viewer", "datasets:read", True),
        ("editor", "workspaces:manage-members", False),
        ("workspace_admin", "workspaces:manage-members", True),
        ("annotator", "feedback:create", True),
        ("annotator", "datasets:create", False),
        # An org viewer is read-only even where the workspace role says Editor.
        ("org_viewer", "datasets:create", False),
        ("org_viewer", "datasets:read", True),
    ],
)
def test_permission_grid_marks_what_the_role_allows(client, world, persona, code, held):
    client.force_login(world.persona(persona))
    body = text_of(client.get(page_url("workspace-home")))
    assert allowed(body, code) is held
    assert refused(body, code) is not held


# --- members pages -----------------------------------------------------------------------


def add_members(world, count, prefix="bulk"):
    for n in range(count):
        user = add_member(world.org, world.workspace, system_role("Viewer"))
        user.email = f"{prefix}{n:04d}@acme.test"
        user.full_name = f"{prefix.title()} Person {n}"
        user.save(update_fields=["email", "full_name"])


@pytest.mark.parametrize("name", ["org-members", "workspace-members"])
def test_members_search_filters_by_email_and_name(client, world, name):
    add_members(world, 3, prefix="zebra")
    world.editor.full_name = "Quentin Unique"
    world.editor.save(update_fields=["full_name"])
    client.force_login(world.org_admin)

    body = text_of(client.get(page_url(name), {"q": "zebra"}))
    assert member_rows(body) == 3
    assert "zebra0000@acme.test" in body
    assert world.editor.email not in body

    by_name = text_of(client.get(page_url(name), {"q": "quentin"}))
    assert world.editor.email in by_name
    assert "zebra0000@acme.test" not in by_name

    none = client.get(page_url(name), {"q": "no-one-matches-this"})
    assert none.status_code == 200
    assert "No member matches" in text_of(none)


@pytest.mark.parametrize("name", ["org-members", "workspace-members"])
def test_members_list_is_paginated_beyond_fifty(client, world, name):
    add_members(world, 55)
    client.force_login(world.org_admin)

    first = text_of(client.get(page_url(name)))
    assert 'aria-label="Pagination"' in first
    assert 'href="?page=2"' in first
    assert member_rows(first) == 50

    second = client.get(page_url(name), {"page": 2})
    assert second.status_code == 200
    assert 'href="?page=1"' in text_of(second)
    assert member_rows(text_of(second)) > 0


@pytest.mark.parametrize("name", ["org-members", "workspace-members"])
def test_pagination_keeps_the_search(client, world, name):
    add_members(world, 55, prefix="many")
    client.force_login(world.org_admin)
    body = text_of(client.get(page_url(name), {"q": "many"}))
    assert 'href="?q=many&amp;page=2"' in body
    second = text_of(client.get(page_url(name), {"q": "many", "page": 2}))
    assert second.count('<span class="muted">many00') == 5
    assert world.editor.email not in second


@pytest.mark.parametrize("name", ["org-members", "workspace-members"])
def test_members_list_without_many_members_has_no_pagination(client, world, name):
    client.force_login(world.org_admin)
    assert 'aria-label="Pagination"' not in text_of(client.get(page_url(name)))


@pytest.mark.parametrize("name", ["org-members", "workspace-members"])
def test_htmx_request_gets_only_the_member_rows_fragment(client, world, name):
    add_members(world, 2, prefix="frag")
    client.force_login(world.org_admin)

    response = client.get(page_url(name), {"q": "frag"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = text_of(response).strip()
    assert body.startswith('<div id="member-rows">')
    assert body.endswith("</div>")
    assert "<html" not in body
    assert "<nav" not in body
    assert "frag0000@acme.test" in body
    assert world.editor.email not in body

    full = text_of(client.get(page_url(name), {"q": "frag"}))
    assert "<html" in full
    assert '<div id="member-rows">' in full


def test_htmx_fragment_is_still_behind_the_gate(client, world):
    client.force_login(world.outsider)
    response = client.get(page_url("org-members"), headers={"HX-Request": "true"})
    assert response.status_code == 404
    client.force_login(world.member_without_workspace)
    response = client.get(page_url("workspace-members"), headers={"HX-Request": "true"})
    assert response.status_code == 403


# Pinned: a change here is a change to the page's cost per request.
#   org-members: session, user, organization, access (membership + plan), page count, page rows
#     (users joined), their workspaces and roles by name (one prefetch), pending invitations
#     (admins: a count, and a page only when there are any), sidebar organizations,
#     sidebar workspaces = 10
#   workspace-members: session, user, workspace (+ organization), access, page count, page rows
#     (users and roles joined), assignable roles (managers), org admins, sidebar organizations,
#     sidebar workspaces = 10
MEMBERS_PAGE_QUERIES = {"org-members": 10, "workspace-members": 10}


@pytest.mark.parametrize("name", ["org-members", "workspace-members"])
@pytest.mark.parametrize("extra", [10, 200])
def test_members_pages_use_a_constant_number_of_queries(client, world, name, extra):
    add_members(world, extra)
    client.force_login(world.org_admin)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(page_url(name))
    assert response.status_code == 200
    assert text_of(response).count('<span class="muted">bulk0000@acme.test') == 1
    assert len(queries) == MEMBERS_PAGE_QUERIES[name], "\n".join(
        q["sql"] for q in queries.captured_queries
    )


@pytest.mark.parametrize("name", ["org-members", "workspace-members"])
def test_members_pages_cost_the_same_for_10_and_200_members(client, world, name):
    client.force_login(world.org_admin)
    counts = []
    for batch, total in (("small", 10), ("large", 190)):
        add_members(world, total, prefix=batch)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(page_url(name)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1] == MEMBERS_PAGE_QUERIES[name]


# --- security headers and markup ---------------------------------------------------------

SECURITY_PAGES = [
    ("org_admin", "org-overview"),
    ("org_admin", "org-members"),
    ("org_admin", "workspace-home"),
    ("org_admin", "workspace-members"),
    ("member_without_workspace", "workspace-home"),  # the 403 page
    ("outsider", "org-overview"),  # the 404 page
]


def fetch(client, world, persona, name):
    """The page as this persona sees it; persona None is an anonymous visitor (login page)."""
    if persona is None:
        return client.get(url(name))
    client.force_login(world.persona(persona))
    return client.get(page_url(name))


@pytest.mark.parametrize(("persona", "name"), SECURITY_PAGES)
def test_console_pages_send_a_strict_content_security_policy(client, world, persona, name):
    response = fetch(client, world, persona, name)
    policy = response.headers.get("Content-Security-Policy", "")
    directives = {
        part.strip().split()[0]: part.strip().split()[1:]
        for part in policy.split(";")
        if part.strip()
    }
    assert directives.get("script-src") == ["'self'"]
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy
    assert directives.get("frame-ancestors") == ["'none'"]


def test_login_page_sends_the_content_security_policy(client, db):
    policy = client.get(url("login")).headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy


@pytest.mark.parametrize(("persona", "name"), [*SECURITY_PAGES, (None, "login")])
def test_pages_have_no_inline_script_or_style(client, world, persona, name):
    page = parse(fetch(client, world, persona, name))
    assert page.scripts, "the page should load htmx"
    for attrs, body in page.scripts:
        if attrs.get("type") == "application/json":
            json.loads(body)  # a data block (allauth's passkey options): never run, CSP-neutral
            continue
        assert attrs.get("src"), f"inline <script> without src: {attrs}"
        assert body.strip() == ""
    assert page.style_attributes == []
    assert page.style_elements == 0
    assert page.event_handlers == []


@pytest.mark.parametrize(("persona", "name"), [*SECURITY_PAGES, (None, "login")])
def test_every_post_form_carries_a_csrf_token(client, world, persona, name):
    page = parse(fetch(client, world, persona, name))
    post_forms = [f for f in page.forms if f["attrs"].get("method", "").lower() == "post"]
    assert post_forms, "every console page has at least the sign-in or sign-out form"
    for form in post_forms:
        tokens = [i.get("value") for i in form["inputs"] if i.get("name") == "csrfmiddlewaretoken"]
        assert len(tokens) == 1 and tokens[0], form["attrs"]


@pytest.mark.parametrize(("persona", "name"), SECURITY_PAGES)
def test_body_sends_the_csrf_token_in_htmx_headers(client, world, persona, name):
    page = parse(fetch(client, world, persona, name))
    headers = json.loads(page.body_attrs["hx-headers"])
    assert headers["X-CSRFToken"]


def test_htmx_csrf_header_is_accepted_and_its_absence_refused(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.editor)
    page = parse(client.get(page_url("workspace-home")))
    token = json.loads(page.body_attrs["hx-headers"])["X-CSRFToken"]

    refused_post = client.post(url("logout"))
    assert refused_post.status_code == 403
    assert "_auth_user_id" in client.session

    accepted = client.post(url("logout"), headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert accepted.status_code == 302
    assert "_auth_user_id" not in client.session


def test_request_id_is_echoed(client, world):
    client.force_login(world.editor)
    response = client.get(page_url("workspace-home"), headers={"X-Request-Id": "trace-42.a_b"})
    assert response["X-Request-Id"] == "trace-42.a_b"


@pytest.mark.parametrize("incoming", [None, "has spaces", "x" * 65, "<script>"])
def test_request_id_is_generated_when_missing_or_malformed(client, world, incoming):
    client.force_login(world.editor)
    headers = {"X-Request-Id": incoming} if incoming is not None else {}
    response = client.get(page_url("workspace-home"), headers=headers)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-Id"])


def test_failed_login_audit_event_carries_the_request_id(client, world):
    client.post(
        url("login"),
        {"login": world.editor.email, "password": "wrong-password-x"},
        headers={"X-Request-Id": "req-login-1"},
    )
    assert AuditEvent.objects.get(action="login.failed").request_id == "req-login-1"


@pytest.mark.parametrize(("persona", "name"), SECURITY_PAGES)
def test_pages_refuse_framing(client, world, persona, name):
    response = fetch(client, world, persona, name)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


# --- health ------------------------------------------------------------------------------


def test_healthz_is_public_and_ok(client, db):
    response = client.get(url("health"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_healthz_is_ok_for_a_signed_in_user_too(client, world):
    client.force_login(world.outsider)
    assert client.get(url("health")).json() == {"status": "ok"}

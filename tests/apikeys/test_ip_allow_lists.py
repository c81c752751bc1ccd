"""IP allow lists: an organization's keys work only from its networks, a service key's only
from its own too, at the client address TRUSTED_PROXY_COUNT defines; changes are audited and
refused or admitted from the very next request, warm cache or not."""

import datetime
import ipaddress
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from accesscontrol.apikeys import ip_allow_lists
from accesscontrol.apikeys.ip_allow_lists import MAX_ENTRIES, clean_allow_list
from accesscontrol.apikeys.models import ServiceKey
from accesscontrol.apikeys.services import import_legacy_key, set_service_key_ip_allow_list
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.services import set_ip_allow_list
from tests.factories import pat_for, service_key_for, system_role
from tests.support.api import api_call

INSIDE, OUTSIDE = "203.0.113.9", "198.51.100.7"
INSIDE_V6, OUTSIDE_V6 = "2001:db8::1", "2001:db9::1"


def whoami(client, raw, address, **environ):
    return api_call(client, "GET", "/auth/whoami", raw, REMOTE_ADDR=address, **environ)


def restrict(world, *networks):
    return set_ip_allow_list(
        actor=world.org_admin, organization=world.org, ip_allow_list=list(networks)
    )


def the_key(world, name="Admin key"):
    return ServiceKey.objects.get(organization=world.org, name=name)


def assert_refused(response, address, allow_list="organization"):
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["error"] == "ip_not_allowed"
    assert body["address"] == address
    assert body["allow_list"] == allow_list
    assert address in body["detail"]


# --- the entries: normalised, or refused naming the entry -----------------------------------


def test_entries_are_normalised_deduplicated_and_kept_in_order():
    assert clean_allow_list(
        ["2001:DB8::/32", " 203.0.113.7 ", "10.0.0.0/8", "2001:db8:0::/32", "::1"]
    ) == ["2001:db8::/32", "203.0.113.7/32", "10.0.0.0/8", "::1/128"]
    assert clean_allow_list("10.0.0.0/8\n192.0.2.0/24, 2001:db8::/32\n\n") == [
        "10.0.0.0/8",
        "192.0.2.0/24",
        "2001:db8::/32",
    ]
    assert clean_allow_list([]) == clean_allow_list("") == clean_allow_list(None) == []


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("10.0.0.5/24", "write 10.0.0.0/24 for the whole range, or 10.0.0.5/32"),
        ("2001:db8::1/32", "write 2001:db8::/32 for the whole range, or 2001:db8::1/128"),
        ("10.0.0.0/33", "not an IPv4 or IPv6 address or network"),
        ("example.com", "not an IPv4 or IPv6 address or network"),
        ("01.2.3.4", "not an IPv4 or IPv6 address or network"),
        ("fe80::1%eth0", "not an IPv4 or IPv6 network"),
        ("::ffff:10.0.0.0/104", "write it as IPv4"),
        ("1" * 200, "not an IPv4 or IPv6 network"),
    ],
)
def test_a_bad_entry_is_refused_naming_it(entry, says):
    with pytest.raises(ValidationError) as refused:
        clean_allow_list(["192.0.2.0/24", entry])
    [message] = refused.value.message_dict["ip_allow_list"]
    assert entry[:64] in message
    assert says in message


def test_every_bad_entry_is_named_at_once_and_the_length_is_capped():
    with pytest.raises(ValidationError) as refused:
        clean_allow_list(["nope", "10.0.0.1/8"])
    assert len(refused.value.message_dict["ip_allow_list"]) == 2
    with pytest.raises(ValidationError, match=f"at most {MAX_ENTRIES}"):
        clean_allow_list([f"10.0.{i // 256}.{i % 256}" for i in range(MAX_ENTRIES + 1)])


def test_an_ipv4_mapped_client_address_is_checked_as_ipv4():
    allow = ip_allow_lists.AllowList(ip_allow_lists._parsed(["203.0.113.0/24"]))
    assert allow.refused_by("::ffff:203.0.113.9") is None
    assert allow.refused_by("::ffff:198.51.100.7") == "organization"
    assert allow.refused_by("unknown") == "organization"
    assert allow.refused_by(None) == "organization"


addresses = st.one_of(
    st.ip_addresses(v=4),
    st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None),
)


@given(addresses, addresses, st.integers(0, 128))
def test_the_integer_check_agrees_with_ipaddress(address, base, prefix):
    """What the fast path decides is what the standard library's networks say."""
    network = ipaddress.ip_network(f"{base}/{min(prefix, base.max_prefixlen)}", strict=False)
    allow = ip_allow_lists.AllowList(ip_allow_lists._parsed([str(network)]))
    assert (allow.refused_by(str(address)) is None) == (address in network)


# --- enforcement --------------------------------------------------------------------------


def test_an_empty_list_restricts_nothing(client, world):
    raw = pat_for(world.editor, world.org)
    assert whoami(client, raw, OUTSIDE).status_code == 200
    assert whoami(client, raw, OUTSIDE_V6).status_code == 200


def test_ipv4_the_organization_list_holds_tokens_and_service_keys(client, world):
    restrict(world, "203.0.113.0/24")
    for raw in (pat_for(world.editor, world.org), service_key_for(world.workspace, "Viewer")):
        assert whoami(client, raw, INSIDE).status_code == 200
        assert_refused(whoami(client, raw, OUTSIDE), OUTSIDE)


def test_ipv6_the_organization_list_holds_tokens_and_service_keys(client, world):
    restrict(world, "2001:db8::/32")
    for raw in (pat_for(world.editor, world.org), service_key_for(world.workspace, "Viewer")):
        assert whoami(client, raw, INSIDE_V6).status_code == 200
        assert_refused(whoami(client, raw, OUTSIDE_V6), OUTSIDE_V6)
        assert_refused(whoami(client, raw, INSIDE), INSIDE)  # IPv4 is not in an IPv6 list


def test_refused_on_every_operation_not_only_whoami(client, world):
    restrict(world, "203.0.113.0/24")
    raw = service_key_for(world.workspace, "Admin")
    response = api_call(
        client, "POST", "/datasets", raw, json={"name": "from outside"}, REMOTE_ADDR=OUTSIDE
    )
    assert_refused(response, OUTSIDE)
    response = api_call(client, "GET", "/datasets", raw, root=True, REMOTE_ADDR=OUTSIDE)
    assert_refused(response, OUTSIDE)  # the SDK's root paths too


def test_another_organizations_list_does_not_apply(client, world):
    set_ip_allow_list(
        actor=world.outsider, organization=world.other_org, ip_allow_list=["192.0.2.0/24"]
    )
    assert whoami(client, pat_for(world.editor, world.org), OUTSIDE).status_code == 200


def test_behind_one_trusted_proxy_the_address_it_saw_counts(client, world, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    restrict(world, "203.0.113.0/24")
    raw = pat_for(world.editor, world.org)
    proxy = "10.0.0.2"
    # The proxy appends the address it saw; whatever the client wrote before it is ignored.
    response = whoami(client, raw, proxy, HTTP_X_FORWARDED_FOR=f"{OUTSIDE}, {INSIDE}")
    assert response.status_code == 200
    spoofed = whoami(client, raw, proxy, HTTP_X_FORWARDED_FOR=f"{INSIDE}, {OUTSIDE}")
    assert_refused(spoofed, OUTSIDE)
    v6 = whoami(client, raw, proxy, HTTP_X_FORWARDED_FOR=OUTSIDE_V6)
    assert_refused(v6, OUTSIDE_V6)


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(client, world, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    restrict(world, "203.0.113.0/24")
    raw = pat_for(world.editor, world.org)
    assert_refused(whoami(client, raw, OUTSIDE, HTTP_X_FORWARDED_FOR=INSIDE), OUTSIDE)
    assert whoami(client, raw, INSIDE, HTTP_X_FORWARDED_FOR=OUTSIDE).status_code == 200


def test_a_garbage_forwarded_address_is_refused_by_any_list(client, world, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    restrict(world, "0.0.0.0/0", "::/0")
    raw = pat_for(world.editor, world.org)
    assert_refused(whoami(client, raw, "10.0.0.2", HTTP_X_FORWARDED_FOR="not-an-ip"), "not-an-ip")


def test_a_service_keys_own_list_narrows_the_organizations(client, world):
    restrict(world, "203.0.113.0/24")
    narrow = service_key_for(world.workspace, "Viewer", ip_allow_list=["203.0.113.128/25"])
    wide = service_key_for(world.workspace, "Editor")
    token = pat_for(world.editor, world.org)
    assert whoami(client, narrow, "203.0.113.200").status_code == 200
    assert_refused(whoami(client, narrow, INSIDE), INSIDE, "service_key")
    assert_refused(whoami(client, narrow, OUTSIDE), OUTSIDE, "organization")
    # The key's list binds that key only.
    assert whoami(client, wide, INSIDE).status_code == 200
    assert whoami(client, token, INSIDE).status_code == 200


def test_a_service_keys_list_alone_restricts_it(client, world):
    raw = service_key_for(world.workspace, "Viewer", ip_allow_list=["2001:db8::/48"])
    assert whoami(client, raw, "2001:db8:0:1::5").status_code == 200
    assert_refused(whoami(client, raw, "2001:db8:1::5"), "2001:db8:1::5", "service_key")
    assert_refused(whoami(client, raw, INSIDE), INSIDE, "service_key")


def test_a_refusal_is_no_failed_authentication_and_no_use(client, world, settings):
    settings.THROTTLES = {**settings.THROTTLES, "key": (3, 60), "key-ip": (3, 60)}
    restrict(world, "203.0.113.0/24")
    raw = service_key_for(world.workspace, "Viewer")
    for _ in range(6):
        assert_refused(whoami(client, raw, OUTSIDE), OUTSIDE)
    assert the_key(world, "Viewer key").last_used_at is None
    assert whoami(client, raw, INSIDE).status_code == 200  # not throttled
    assert the_key(world, "Viewer key").last_used_at is not None


# --- immediate effect, with this process's cache warm ---------------------------------------


def warm(client, raw, address):
    for _ in range(3):  # learn the organization, then cache, then warm
        assert whoami(client, raw, address).status_code == 200


def test_a_change_is_refused_or_admitted_on_the_very_next_request(client, world):
    raw = service_key_for(world.workspace, "Admin")
    warm(client, raw, INSIDE)
    restrict(world, "192.0.2.0/24")
    assert_refused(whoami(client, raw, INSIDE), INSIDE)
    restrict(world, "192.0.2.0/24", "203.0.113.0/24")
    assert whoami(client, raw, INSIDE).status_code == 200
    set_service_key_ip_allow_list(actor=world.org_admin, key=the_key(world), ip_allow_list=[])
    warm(client, raw, INSIDE)
    set_service_key_ip_allow_list(
        actor=world.org_admin, key=the_key(world), ip_allow_list=["192.0.2.0/24"]
    )
    assert_refused(whoami(client, raw, INSIDE), INSIDE, "service_key")
    restrict(world)
    set_service_key_ip_allow_list(actor=world.org_admin, key=the_key(world), ip_allow_list=[])
    assert whoami(client, raw, OUTSIDE).status_code == 200


def test_the_warm_path_checks_each_requests_address_without_sql(
    client, world, django_assert_num_queries
):
    restrict(world, "203.0.113.0/24", "2001:db8::/32")
    for raw in (pat_for(world.editor, world.org), service_key_for(world.workspace, "Viewer")):
        warm(client, raw, INSIDE)
        with django_assert_num_queries(0):
            assert whoami(client, raw, INSIDE_V6).status_code == 200
            assert_refused(whoami(client, raw, OUTSIDE), OUTSIDE)
            assert_refused(whoami(client, raw, OUTSIDE_V6), OUTSIDE_V6)
            assert whoami(client, raw, INSIDE).status_code == 200


# --- audit ----------------------------------------------------------------------------------


def test_changes_are_audited_with_before_and_after(world):
    restrict(world, "203.0.113.0/24")
    restrict(world, "203.0.113.0/24")  # no change, no row
    restrict(world, "2001:DB8::/32")
    events = AuditEvent.objects.filter(action="organization.ip_allow_list_changed")
    assert [e.changes for e in events.order_by("created_at", "id")] == [
        {"before": {"ip_allow_list": []}, "after": {"ip_allow_list": ["203.0.113.0/24"]}},
        {
            "before": {"ip_allow_list": ["203.0.113.0/24"]},
            "after": {"ip_allow_list": ["2001:db8::/32"]},
        },
    ]
    assert {e.actor_user_id for e in events} == {world.org_admin.pk}
    assert {e.organization_id for e in events} == {world.org.pk}

    service_key_for(world.workspace, "Viewer", ip_allow_list=["192.0.2.1"])
    created = AuditEvent.objects.get(action="service_key.created")
    assert created.changes["after"]["ip_allow_list"] == ["192.0.2.1/32"]
    key = the_key(world, "Viewer key")
    set_service_key_ip_allow_list(actor=world.org_admin, key=key, ip_allow_list=[])
    changed = AuditEvent.objects.get(action="service_key.ip_allow_list_changed")
    assert changed.changes == {
        "before": {"ip_allow_list": ["192.0.2.1/32"]},
        "after": {"ip_allow_list": []},
    }
    assert changed.workspace_id == world.workspace.pk
    assert changed.target_id == str(key.pk)


def test_only_who_manages_may_change_a_list(world):
    with pytest.raises(ValidationError):
        set_ip_allow_list(actor=world.editor, organization=world.org, ip_allow_list=[])
    service_key_for(world.workspace, "Viewer")
    with pytest.raises(ValidationError):
        set_service_key_ip_allow_list(
            actor=world.editor, key=the_key(world, "Viewer key"), ip_allow_list=["192.0.2.0/24"]
        )
    assert not AuditEvent.objects.filter(action__endswith="ip_allow_list_changed").exists()


# --- the API --------------------------------------------------------------------------------


def org_list(client, raw, address, method="GET", body=None):
    return api_call(
        client, method, "/orgs/current/ip-allow-list", raw, json=body, REMOTE_ADDR=address
    )


def test_api_reads_and_sets_the_organizations_list(client, world):
    raw = pat_for(world.org_admin, world.org)
    response = org_list(client, raw, INSIDE)
    assert response.json() == {"ip_allow_list": [], "your_address": INSIDE}
    body = {"ip_allow_list": ["203.0.113.0/24", "2001:DB8::/32"]}
    response = org_list(client, raw, INSIDE, "PUT", body)
    assert response.status_code == 200, response.content
    expected = {"ip_allow_list": ["203.0.113.0/24", "2001:db8::/32"], "your_address": INSIDE}
    assert response.json() == expected
    assert org_list(client, raw, INSIDE).json() == expected
    assert_refused(org_list(client, raw, OUTSIDE), OUTSIDE)
    assert AuditEvent.objects.get(action="organization.ip_allow_list_changed").ip_address == INSIDE


def test_api_refuses_a_bad_entry_with_a_422_naming_it(client, world):
    raw = pat_for(world.org_admin, world.org)
    response = org_list(client, raw, INSIDE, "PUT", {"ip_allow_list": ["10.0.0.5/24"]})
    assert response.status_code == 422
    [message] = response.json()["fields"]["ip_allow_list"]
    assert "10.0.0.5/24" in message and "10.0.0.0/24" in message
    response = org_list(client, raw, INSIDE, "PUT", {"ip_allow_list": "10.0.0.0/8"})
    assert response.status_code == 422  # a list, not text
    assert not AuditEvent.objects.filter(action="organization.ip_allow_list_changed").exists()


def test_api_refuses_a_list_that_would_lock_out_the_request_making_it(client, world):
    raw = pat_for(world.org_admin, world.org)
    response = org_list(client, raw, OUTSIDE, "PUT", {"ip_allow_list": ["203.0.113.0/24"]})
    assert response.status_code == 422
    [message] = response.json()["fields"]["ip_allow_list"]
    assert OUTSIDE in message and "console" in message
    assert org_list(client, raw, OUTSIDE).json()["ip_allow_list"] == []
    # A service key's own list counts too: the organization's may not leave it nothing.
    key = service_key_for(world.workspace, "Admin", org_scoped=True, ip_allow_list=[INSIDE])
    response = org_list(client, key, INSIDE, "PUT", {"ip_allow_list": ["192.0.2.0/24"]})
    assert response.status_code == 422
    assert org_list(client, key, INSIDE, "PUT", {"ip_allow_list": [INSIDE]}).status_code == 200


def test_api_the_organizations_list_needs_organization_manage(client, world):
    raw = pat_for(world.workspace_admin, world.org)
    assert org_list(client, raw, INSIDE).status_code == 403
    response = org_list(client, raw, INSIDE, "PUT", {"ip_allow_list": []})
    assert response.status_code == 403
    assert response.json()["required"] == "organization:manage"


def in_production(client, world, method, path, body):
    """A request of the production workspace's admin, with a token, from an allowed address."""
    admin = pat_for(world.workspace_admin, world.org)
    return api_call(
        client, method, path, admin, tenant=world.workspace.pk, json=body, REMOTE_ADDR=INSIDE
    )


def test_api_creates_a_service_key_with_its_list_and_changes_it(client, world):
    create = {"name": "ci", "role_id": str(system_role("Viewer").pk)}
    body = {**create, "ip_allow_list": ["203.0.113.0/24", "2001:DB8::1"]}
    response = in_production(client, world, "POST", "/api-key", body)
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["ip_allow_list"] == ["203.0.113.0/24", "2001:db8::1/128"]
    assert whoami(client, created["key"], "2001:db8::1").status_code == 200
    assert_refused(whoami(client, created["key"], OUTSIDE), OUTSIDE, "service_key")

    path = f"/api-key/{created['id']}/ip-allow-list"
    response = in_production(client, world, "PUT", path, {"ip_allow_list": [OUTSIDE]})
    assert response.status_code == 200, response.content
    assert response.json()["ip_allow_list"] == [f"{OUTSIDE}/32"]
    assert whoami(client, created["key"], OUTSIDE).status_code == 200


def test_api_refuses_a_bad_key_list_and_creates_nothing(client, world):
    body = {"name": "ci", "ip_allow_list": ["192.0.2.0/24", "192.0.2.300"]}
    response = in_production(client, world, "POST", "/api-key", body)
    assert response.status_code == 422
    assert "192.0.2.300" in response.json()["fields"]["ip_allow_list"][0]
    assert not ServiceKey.objects.filter(name="ci").exists()


def test_api_a_key_may_not_shut_itself_out(client, world):
    raw = service_key_for(world.workspace, "Admin")
    key = the_key(world)
    path = f"/api-key/{key.pk}/ip-allow-list"
    response = api_call(
        client, "PUT", path, raw, json={"ip_allow_list": ["192.0.2.0/24"]}, REMOTE_ADDR=INSIDE
    )
    assert response.status_code == 422
    assert INSIDE in response.json()["detail"]
    response = api_call(
        client, "PUT", path, raw, json={"ip_allow_list": [INSIDE]}, REMOTE_ADDR=INSIDE
    )
    assert response.status_code == 200
    assert_refused(whoami(client, raw, OUTSIDE), OUTSIDE, "service_key")


# --- the console ----------------------------------------------------------------------------


def test_console_shows_the_admins_address_and_warns_when_the_list_leaves_it_out(client, world):
    client.force_login(world.org_admin)
    url = reverse("org-ip-allow-list", args=["acme"])
    page = client.get(url, REMOTE_ADDR=INSIDE).content.decode()
    assert f"<code>{INSIDE}</code>" in page
    assert "outside the saved list" not in page

    response = client.post(
        url, {"ip_allow_list": "192.0.2.0/24\n2001:DB8::/32"}, REMOTE_ADDR=INSIDE
    )
    assert response.status_code == 302
    world.org.refresh_from_db()
    assert world.org.ip_allow_list == ["192.0.2.0/24", "2001:db8::/32"]
    page = client.get(url, REMOTE_ADDR=INSIDE).content.decode()
    assert "API keys used from here are now refused" in page  # the flashed warning
    assert "outside the saved list" in page
    assert "192.0.2.0/24\n2001:db8::/32" in page
    # The console itself is never restricted.
    assert client.get(reverse("org-settings", args=["acme"]), REMOTE_ADDR=INSIDE).status_code == 200


def test_console_form_errors_name_the_entry_and_change_nothing(client, world):
    client.force_login(world.org_admin)
    url = reverse("org-ip-allow-list", args=["acme"])
    response = client.post(url, {"ip_allow_list": "192.0.2.0/24\n10.1.2.3/8"})
    assert response.status_code == 422
    page = response.content.decode()
    assert "10.1.2.3/8” has host bits set" in page
    world.org.refresh_from_db()
    assert world.org.ip_allow_list == []


def test_console_service_key_form_takes_a_list_and_refuses_a_bad_one(client, world):
    client.force_login(world.workspace_admin)
    url = reverse("service-keys", args=["acme", "production"])
    data = {"name": "ci", "role": system_role("Viewer").pk, "expires_in": "30"}
    response = client.post(url, {**data, "ip_allow_list": "nope"})
    assert response.status_code == 422
    assert "“nope” is not an IPv4 or IPv6" in response.content.decode()
    assert not ServiceKey.objects.filter(name="ci").exists()

    response = client.post(url, {**data, "ip_allow_list": "203.0.113.0/24"})
    assert response.status_code == 302
    key = ServiceKey.objects.get(name="ci")
    assert key.ip_allow_list == ["203.0.113.0/24"]
    assert "from 203.0.113.0/24" in client.get(response["Location"]).content.decode()

    edit = reverse("service-key-ip-allow-list", args=["acme", "production", key.pk])
    assert "203.0.113.0/24" in client.get(edit).content.decode()
    response = client.post(edit, {"ip_allow_list": "203.0.113.0/24\n::/0 x"})
    assert response.status_code == 422
    assert "“::/0 x”" in response.content.decode()
    response = client.post(edit, {"ip_allow_list": ""})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.ip_allow_list == []


def test_console_a_key_of_another_workspace_is_not_found(client, world):
    service_key_for(world.other_workspace, "Viewer")
    key = ServiceKey.objects.get(workspace=world.other_workspace)
    client.force_login(world.workspace_admin)
    edit = reverse("service-key-ip-allow-list", args=["acme", "production", key.pk])
    assert client.post(edit, {"ip_allow_list": ""}).status_code == 404


def test_a_revoked_keys_allow_list_is_not_changed(world):
    from django.core.exceptions import ValidationError

    from accesscontrol.apikeys.services import revoke_service_key, set_service_key_ip_allow_list

    service_key_for(world.workspace, "Viewer")
    key = ServiceKey.objects.get(workspace=world.workspace, name="Viewer key")
    revoke_service_key(actor=world.org_admin, key=key)
    with pytest.raises(ValidationError, match="revoked"):
        set_service_key_ip_allow_list(actor=world.org_admin, key=key, ip_allow_list=["10.0.0.0/8"])
    key.refresh_from_db()
    assert key.ip_allow_list == []


def test_legacy_and_organization_wide_keys_are_held_to_the_list_too(client, world, settings):
    """Every kind of API key the server still accepts goes through the one check."""
    settings.LEGACY_API_KEY_SUNSET = timezone.now().date() + datetime.timedelta(days=30)
    legacy = "ls__" + uuid.uuid4().hex
    import_legacy_key(raw=legacy, workspace=world.workspace, name="old")
    org_wide = service_key_for(world.workspace, org_scoped=True)
    restrict(world, "203.0.113.0/24")
    for raw, tenant in ((legacy, ""), (org_wide, str(world.workspace.pk))):
        assert whoami(client, raw, INSIDE, HTTP_X_TENANT_ID=tenant).status_code == 200
        assert_refused(whoami(client, raw, OUTSIDE, HTTP_X_TENANT_ID=tenant), OUTSIDE)

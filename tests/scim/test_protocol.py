"""The SCIM endpoints' answers to what identity providers actually send, and to what they
should not: Okta's and Entra's PATCH shapes, filters, pages, ETags, and every refusal in the
SCIM error schema with nothing changed."""

import pytest

from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.scim import services
from accesscontrol.scim.models import ScimGroup, ScimUser
from tests.scim.conftest import group_body, patch_body, user_body
from tests.scim.conftest import snapshot as row_counts

pytestmark = pytest.mark.django_db

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def created(scim, user_name="grace@example.com", **extra):
    response = scim("POST", "Users", user_body(user_name, **extra))
    assert response.status_code == 201, response.content
    return response.json()


def error_of(response, status, scim_type=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/scim+json"
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type
    assert body["detail"]
    return body


# --- PATCH as the identity providers send it -----------------------------------------------------


def test_okta_deactivates_with_a_path_less_replace(scim, world):
    user = created(scim)
    response = scim(
        "PATCH", f"Users/{user['id']}", patch_body({"op": "replace", "value": {"active": False}})
    )
    assert response.status_code == 200 and response.json()["active"] is False
    assert not OrganizationMembership.objects.filter(
        organization=world.org, user__email="grace@example.com"
    ).exists()


@pytest.mark.parametrize("value", ["False", "false", False])
def test_entra_deactivates_with_a_capitalised_op_and_a_string_boolean(scim, world, value):
    user = created(scim)
    response = scim(
        "PATCH",
        f"Users/{user['id']}",
        patch_body({"op": "Replace", "path": "active", "value": value}),
    )
    assert response.status_code == 200 and response.json()["active"] is False
    assert not OrganizationMembership.objects.filter(user__email="grace@example.com").exists()


def test_entra_attribute_updates_with_filtered_and_enterprise_paths(scim):
    user = created(scim)
    response = scim(
        "PATCH",
        f"Users/{user['id']}",
        patch_body(
            {"op": "Add", "path": 'emails[type eq "work"].value', "value": "g.hopper@example.com"},
            {"op": "Replace", "path": "name.givenName", "value": "Amazing Grace"},
            {"op": "Add", "path": "title", "value": "Rear Admiral"},
            {
                "op": "Add",
                "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "value": "Navy",
            },
            {"op": "Replace", "path": "displayName", "value": "Grace H."},
            {"op": "Remove", "path": "externalId"},
        ),
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["emails"][0]["value"] == "g.hopper@example.com"
    assert body["name"]["givenName"] == "Amazing Grace"
    assert body["title"] == "Rear Admiral"
    assert body["displayName"] == "Grace H."
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    assert body[enterprise] == {"department": "Navy"} and enterprise in body["schemas"]
    assert "externalId" not in body


def test_okta_path_less_replace_of_several_attributes(scim):
    user = created(scim, externalId="00u1")
    response = scim(
        "PATCH",
        f"Users/{user['id']}",
        patch_body(
            {
                "op": "replace",
                "value": {"userName": "grace.h@example.com", "name": {"familyName": "Murray"}},
            }
        ),
    )
    body = response.json()
    assert (body["userName"], body["name"], body["externalId"]) == (
        "grace.h@example.com",
        {"givenName": "Grace", "familyName": "Murray"},
        "00u1",
    )


def test_groups_patch_adds_and_removes_members_by_filter(scim):
    ada, bob = created(scim, "ada@example.com"), created(scim, "bob@example.com")
    group = scim("POST", "Groups", group_body("Engineers")).json()
    add = patch_body(
        {"op": "add", "path": "members", "value": [{"value": ada["id"]}, {"value": bob["id"]}]}
    )
    assert len(scim("PATCH", f"Groups/{group['id']}", add).json()["members"]) == 2
    remove = patch_body({"op": "remove", "path": f'members[value eq "{ada["id"]}"]'})
    after = scim("PATCH", f"Groups/{group['id']}", remove).json()
    assert [m["value"] for m in after["members"]] == [bob["id"]]
    # Entra removes with a value list; Okta renames with a path-less replace repeating the id.
    entra = patch_body({"op": "Remove", "path": "members", "value": [{"value": bob["id"]}]})
    assert scim("PATCH", f"Groups/{group['id']}", entra).json()["members"] == []
    okta = patch_body({"op": "replace", "value": {"id": group["id"], "displayName": "Eng"}})
    assert scim("PATCH", f"Groups/{group['id']}", okta).json()["displayName"] == "Eng"


# --- filters and pages ---------------------------------------------------------------------------


def test_filters_on_username_external_id_and_display_name(scim):
    created(scim, "ada@example.com", externalId="ext-ada")
    created(scim, "bob@example.com", displayName="Bob B")
    scim("POST", "Groups", group_body("Engineers"))

    def names(path, text):
        body = scim("GET", f"{path}?filter={text}").json()
        return [r.get("userName") or r["displayName"] for r in body["Resources"]]

    assert names("Users", 'userName eq "ADA@example.com"') == ["ada@example.com"]
    assert names("Users", 'externalId eq "ext-ada"') == ["ada@example.com"]
    assert names("Users", 'displayName eq "Bob B"') == ["bob@example.com"]
    assert names("Users", 'userName eq "nobody@example.com"') == []
    assert names("Groups", 'displayName eq "engineers"') == ["Engineers"]


@pytest.mark.parametrize(
    "text",
    [
        'userName co "ada"',
        'userName eq "ada" and active eq true',
        'password eq "x"',
        "userName eq ada",
        "(((",
    ],
)
def test_any_other_filter_is_invalid_filter(scim, text):
    error_of(scim("GET", f"Users?filter={text}"), 400, "invalidFilter")


def test_pages_with_start_index_and_count(scim):
    for n in range(5):
        created(scim, f"user{n}@example.com")
    body = scim("GET", "Users?startIndex=2&count=2").json()
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (5, 2, 2)
    assert [r["userName"] for r in body["Resources"]] == ["user1@example.com", "user2@example.com"]
    assert scim("GET", "Users?count=0").json()["Resources"] == []
    error_of(scim("GET", "Users?count=many"), 400, "invalidValue")


# --- ETags ---------------------------------------------------------------------------------------


def test_if_match_mismatch_is_412_and_changes_nothing(scim):
    user = created(scim)
    path = f"Users/{user['id']}"
    etag = scim("GET", path)["ETag"]
    assert etag == user["meta"]["version"]
    rename = patch_body({"op": "replace", "path": "displayName", "value": "G"})
    assert scim("PATCH", path, rename, **{"If-Match": etag}).status_code == 200
    stale = patch_body({"op": "replace", "path": "displayName", "value": "stale"})
    error_of(scim("PATCH", path, stale, **{"If-Match": etag}), 412)
    error_of(scim("DELETE", path, **{"If-Match": etag}), 412)
    assert scim("GET", path).json()["displayName"] == "G"


# --- refusals ------------------------------------------------------------------------------------


def test_a_duplicate_user_name_is_409_uniqueness(scim):
    created(scim)
    before = row_counts()
    error_of(scim("POST", "Users", user_body("GRACE@example.com")), 409, "uniqueness")
    assert row_counts() == before


REFUSED_BODIES = [
    ("unknown attribute", user_body("x@example.com", shoeSize=42), "invalidPath"),
    (
        "unknown schema",
        {
            **user_body("x@example.com"),
            "schemas": ["urn:example:Unknown", *user_body("x")["schemas"]],
        },
        "invalidValue",
    ),
    ("no core schema", {**user_body("x@example.com"), "schemas": []}, "invalidSyntax"),
    ("userName missing", {"schemas": user_body("x")["schemas"]}, "invalidValue"),
    ("not an email", user_body("not-an-email", emails=[]), "invalidValue"),
    ("active not a boolean", user_body("x@example.com", active="maybe"), "invalidValue"),
    ("a list, not an object", [], "invalidSyntax"),
]


@pytest.mark.parametrize(
    ("why", "body", "scim_type"), REFUSED_BODIES, ids=lambda v: v if isinstance(v, str) else ""
)
def test_bad_user_bodies_are_400_and_change_nothing(scim, why, body, scim_type):
    before = row_counts()
    error_of(scim("POST", "Users", body), 400, scim_type)
    assert row_counts() == before


@pytest.mark.parametrize(
    ("operation", "scim_type"),
    [
        ({"op": "replace", "path": "shoeSize", "value": 1}, "invalidPath"),
        ({"op": "replace", "path": "id", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": 'emails[type co "w"].value', "value": "x"}, "invalidFilter"),
        ({"op": "replace", "path": "urn:example:Other:thing", "value": 1}, "invalidPath"),
        ({"op": "frobnicate", "path": "active", "value": True}, "invalidSyntax"),
        ({"op": "remove"}, "noTarget"),
        ({"op": "replace", "path": "active", "value": "perhaps"}, "invalidValue"),
        ({"op": "replace", "value": {"shoeSize": 1}}, "invalidPath"),
    ],
)
def test_bad_patches_are_400_and_change_nothing(scim, operation, scim_type):
    user = created(scim)
    before = row_counts()
    error_of(scim("PATCH", f"Users/{user['id']}", patch_body(operation)), 400, scim_type)
    assert row_counts() == before


def test_a_patch_without_the_patch_schema_is_invalid_syntax(scim):
    user = created(scim)
    body = {"schemas": ["urn:example:NotPatch"], "Operations": [{"op": "remove", "path": "title"}]}
    error_of(scim("PATCH", f"Users/{user['id']}", body), 400, "invalidSyntax")


def test_malformed_json_is_400_invalid_syntax(scim):
    before = row_counts()
    error_of(scim("POST", "Users", raw='{"userName": '), 400, "invalidSyntax")
    error_of(scim("POST", "Users", raw="[" * 5000 + "]" * 5000), 400, "invalidValue")
    error_of(scim("POST", "Users", raw='{"userName": "a\\u0000@example.com"}'), 400, "invalidValue")
    assert row_counts() == before


def test_a_huge_body_is_413(scim, settings):
    settings.SCIM_MAX_BODY_BYTES = 10_000
    huge = user_body("x@example.com", title="x" * 20_000)
    before = row_counts()
    error_of(scim("POST", "Users", huge), 413)
    assert row_counts() == before


def test_an_unknown_member_of_a_group_is_400_and_changes_nothing(scim):
    before = row_counts()
    body = group_body("Engineers", "8c1b7f9e-0000-4000-8000-000000000000")
    error_of(scim("POST", "Groups", body), 400, "invalidValue")
    error_of(scim("POST", "Groups", group_body("Engineers", "not-an-id")), 400, "invalidValue")
    assert row_counts() == before


def test_a_duplicate_group_name_is_409(scim):
    assert scim("POST", "Groups", group_body("Engineers")).status_code == 201
    error_of(scim("POST", "Groups", group_body("ENGINEERS")), 409, "uniqueness")


def test_unknown_ids_and_methods(scim):
    error_of(scim("GET", "Users/8c1b7f9e-0000-4000-8000-000000000000"), 404)
    error_of(scim("GET", "Users/not-a-uuid"), 404)
    error_of(scim("GET", "Groups/not-a-uuid"), 404)
    error_of(scim("PUT", "Users", user_body("x@example.com")), 405)
    error_of(scim("GET", "Schemas/urn:example:nothing"), 404)


def test_discovery_documents(scim):
    config = scim("GET", "ServiceProviderConfig").json()
    assert config["patch"]["supported"] and config["etag"]["supported"]
    types = scim("GET", "ResourceTypes").json()
    assert {t["id"] for t in types["Resources"]} == {"User", "Group"}
    schema = scim("GET", "Schemas/urn:ietf:params:scim:schemas:core:2.0:User").json()
    assert schema["name"] == "User"


# --- the service rules behind the endpoints ------------------------------------------------------


def test_post_links_an_existing_account_and_keeps_a_hand_made_membership(scim, world):
    response = scim("POST", "Users", user_body(world.editor.email))
    assert response.status_code == 201
    linked = ScimUser.objects.get(pk=response.json()["id"])
    assert linked.user == world.editor
    membership = OrganizationMembership.objects.get(user=world.editor, organization=world.org)
    assert membership.source == "manual"  # already a member: nothing added
    assert not AuditEvent.objects.filter(action="org_member.added").exists()


def test_an_account_of_another_organization_is_not_taken_and_nothing_changes(scim, world):
    """As single sign-on (organizations.identity_provider_may_adopt): an organization's IdP
    could name an address at a domain it does not own; the person joins by invitation first."""
    before = OrganizationMembership.objects.count()
    response = scim("POST", "Users", user_body(world.outsider.email))
    assert response.status_code == 409, response.content
    assert response.json()["scimType"] == "uniqueness"
    assert "another organization" in response.json()["detail"]
    assert not ScimUser.objects.exists()
    assert OrganizationMembership.objects.count() == before
    assert not OrganizationMembership.objects.filter(
        user=world.outsider, organization=world.org
    ).exists()


def test_a_user_created_inactive_joins_nothing(scim):
    created(scim, active=False)
    assert not OrganizationMembership.objects.filter(user__email="grace@example.com").exists()


def test_delete_deprovisions_then_forgets(scim, world):
    user = created(scim)
    assert scim("DELETE", f"Users/{user['id']}").status_code == 204
    assert not ScimUser.objects.exists()
    assert not OrganizationMembership.objects.filter(user__email="grace@example.com").exists()
    actions = list(
        AuditEvent.objects.filter(actor_kind="scim_token")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions[-3:] == ["org_member.removed", "scim_user.deactivated", "scim_user.deleted"]


def test_put_replaces_and_can_deactivate(scim, world):
    user = created(scim)
    body = user_body("grace@example.com", active=False, displayName="Grace")
    response = scim("PUT", f"Users/{user['id']}", body)
    assert response.status_code == 200 and response.json()["active"] is False
    assert response.json()["displayName"] == "Grace"
    assert not OrganizationMembership.objects.filter(user__email="grace@example.com").exists()


def test_the_last_org_admin_cannot_be_deprovisioned(scim, world):
    response = scim("POST", "Users", user_body(world.org_admin.email))
    before = row_counts()
    deactivate = patch_body({"op": "replace", "path": "active", "value": False})
    error_of(scim("PATCH", f"Users/{response.json()['id']}", deactivate), 400, "invalidValue")
    assert row_counts() == before


def test_groups_created_with_members(scim, world):
    ada = created(scim, "ada@example.com")
    response = scim("POST", "Groups", group_body("Engineers", ada["id"]))
    assert response.status_code == 201
    group = ScimGroup.objects.get(pk=response.json()["id"])
    assert [m.user_name for m in group.members.all()] == ["ada@example.com"]
    assert services  # the services module the endpoints call


def test_a_password_sent_by_the_identity_provider_is_never_kept(scim):
    user = created(scim, password="hunter2-from-okta")
    scim_user = ScimUser.objects.select_related("user").get(pk=user["id"])
    assert not scim_user.user.has_usable_password()
    assert "hunter2" not in repr(ScimUser.objects.values_list()) + repr(
        list(AuditEvent.objects.values_list("changes"))
    )
    assert "password" not in scim("GET", f"Users/{user['id']}").json()

from django.urls import include, path

from accesscontrol.accounts import allauth_urls
from accesscontrol.accounts import views as accounts
from accesscontrol.api import urls as api_urls
from accesscontrol.apikeys import views as apikeys
from accesscontrol.audit import views as audit
from accesscontrol.organizations import views as organizations
from accesscontrol.organizations import views_authentication
from accesscontrol.rbac import views as rbac
from accesscontrol.resources.views import shared
from accesscontrol.scim import console as scim
from accesscontrol.sso import views as sso
from accesscontrol.workspaces import views as workspaces

ORG = "o/<slug:org_slug>/"
WS = ORG + "w/<slug:workspace_slug>/"

urlpatterns = [
    # The API first: it is the hot path, and URL resolution tries patterns in order.
    path("api/v1/", include(api_urls.versioned)),
    path("", accounts.home, name="home"),
    path("login/", accounts.login_view, name="login"),
    path("logout/", accounts.logout_view, name="logout"),
    path("login/sso/", sso.sso_sign_in, name="sso-sign-in"),
    path("account/confirm/", accounts.confirm_password, name="sudo"),
    path("account/confirm/sso/", sso.sso_reauthenticate, name="sudo-sso"),
    # Sign-in stages, MFA and SSO (django-allauth), every view declared to the gate
    path("accounts/", include(allauth_urls.urlpatterns())),
    path("healthz", accounts.health, name="health"),
    # SCIM 2.0 provisioning: an organization's SCIM token only (scim/auth.py)
    path("scim/v2/", include("accesscontrol.scim.urls")),
    path("invitations/<str:token>/", organizations.accept_invitation, name="invitation-accept"),
    # What a share link opens (the SDK's share URLs: /public/<token>/r and /d), read-only
    path("public/<uuid:share_token>/r", shared.shared_run, name="shared-run"),
    path("public/<uuid:share_token>/d", shared.shared_dataset, name="shared-dataset"),
    path("public/<uuid:share_token>/p", shared.shared_prompt, name="shared-prompt"),
    # The run URL the SDK's get_run_url builds: workspace by id, then the run's own page
    path(
        "o/<uuid:workspace_id>/projects/p/<uuid:project_id>/r/<uuid:run_id>",
        shared.sdk_run_url,
        name="sdk-run-url",
    ),
    # Organization
    path(ORG, organizations.org_overview, name="org-overview"),
    path(ORG + "members/", organizations.org_members, name="org-members"),
    path(ORG + "members/invite/", organizations.org_invite, name="org-invite"),
    path(
        ORG + "members/<uuid:member_id>/role/",
        organizations.org_member_role,
        name="org-member-role",
    ),
    path(
        ORG + "members/<uuid:member_id>/remove/",
        organizations.org_member_remove,
        name="org-member-remove",
    ),
    path(
        ORG + "invitations/<uuid:invitation_id>/resend/",
        organizations.invitation_resend,
        name="invitation-resend",
    ),
    path(
        ORG + "invitations/<uuid:invitation_id>/cancel/",
        organizations.invitation_cancel,
        name="invitation-cancel",
    ),
    path(ORG + "workspaces/", organizations.org_workspaces, name="org-workspaces"),
    path(ORG + "workspaces/new/", organizations.org_workspace_create, name="org-workspace-create"),
    path(ORG + "settings/", organizations.org_settings, name="org-settings"),
    path(ORG + "settings/authentication/sso/", sso.org_sso, name="org-sso"),
    path(ORG + "settings/authentication/sso/domains/", sso.org_sso_domains, name="org-sso-domains"),
    path(
        ORG + "settings/authentication/sso/domains/<uuid:domain_id>/release/",
        sso.org_sso_domain_release,
        name="org-sso-domain-release",
    ),
    path(ORG + "settings/authentication/sso/remove/", sso.org_sso_remove, name="org-sso-remove"),
    path(
        ORG + "settings/authentication/",
        views_authentication.org_authentication,
        name="org-authentication",
    ),
    path(
        ORG + "settings/ip-allow-list/",
        organizations.org_ip_allow_list,
        name="org-ip-allow-list",
    ),
    path(ORG + "settings/provisioning/", scim.provisioning, name="org-provisioning"),
    path(ORG + "settings/provisioning/token/", scim.token_issue, name="org-provisioning-token"),
    path(
        ORG + "settings/provisioning/token/rotate/",
        scim.token_rotate,
        name="org-provisioning-token-rotate",
    ),
    path(
        ORG + "settings/provisioning/token/revoke/",
        scim.token_revoke,
        name="org-provisioning-token-revoke",
    ),
    path(
        ORG + "settings/provisioning/default-role/",
        scim.default_role,
        name="org-provisioning-default-role",
    ),
    path(
        ORG + "settings/provisioning/mappings/new/",
        scim.mapping_add,
        name="org-provisioning-mapping-add",
    ),
    path(
        ORG + "settings/provisioning/mappings/<uuid:mapping_id>/",
        scim.mapping_edit,
        name="org-provisioning-mapping",
    ),
    path(
        ORG + "settings/provisioning/mappings/<uuid:mapping_id>/remove/",
        scim.mapping_remove,
        name="org-provisioning-mapping-remove",
    ),
    path(ORG + "roles/", rbac.roles, name="roles"),
    path(ORG + "roles/new/", rbac.role_create, name="role-create"),
    path(ORG + "roles/<uuid:role_id>/", rbac.role_edit, name="role-edit"),
    path(ORG + "roles/<uuid:role_id>/delete/", rbac.role_delete, name="role-delete"),
    path(ORG + "audit/", audit.audit_log, name="audit-log"),
    path(ORG + "reviews/", include("accesscontrol.reviews.urls")),
    path(ORG + "access-requests/", include("accesscontrol.access_requests.urls")),
    path(ORG + "audit/export.csv", audit.audit_export, name="audit-export"),
    path(ORG + "audit/export.ocsf.jsonl", audit.audit_export_ocsf, name="audit-export-ocsf"),
    path(ORG + "members/<uuid:member_id>/access/", rbac.member_access, name="member-access"),
    path(ORG + "tokens/", apikeys.personal_tokens, name="personal-tokens"),
    path(ORG + "tokens/<uuid:token_id>/", apikeys.personal_token, name="personal-token"),
    path(
        ORG + "tokens/<uuid:token_id>/revoke/",
        apikeys.personal_token_revoke,
        name="personal-token-revoke",
    ),
    path(
        ORG + "tokens/<uuid:token_id>/rotate/",
        apikeys.personal_token_rotate,
        name="personal-token-rotate",
    ),
    # Workspace
    path(WS, workspaces.workspace_home, name="workspace-home"),
    path(WS + "members/", workspaces.workspace_members, name="workspace-members"),
    path(WS + "members/add/", workspaces.workspace_member_add, name="workspace-member-add"),
    path(
        WS + "members/add/suggestions/",
        workspaces.workspace_member_suggestions,
        name="workspace-member-suggestions",
    ),
    path(
        WS + "members/bulk-role/",
        workspaces.workspace_members_bulk_role,
        name="workspace-members-bulk-role",
    ),
    path(
        WS + "members/<uuid:member_id>/role/",
        workspaces.workspace_member_role,
        name="workspace-member-role",
    ),
    path(
        WS + "members/<uuid:member_id>/remove/",
        workspaces.workspace_member_remove,
        name="workspace-member-remove",
    ),
    path(WS + "settings/", workspaces.workspace_settings, name="workspace-settings"),
    path(WS + "settings/archive/", workspaces.workspace_archive, name="workspace-archive"),
    path(WS + "settings/delete/", workspaces.workspace_delete, name="workspace-delete"),
    path(WS + "access/", rbac.workspace_access, name="workspace-access"),
    path(WS + "access/export.csv", rbac.workspace_access_export, name="workspace-access-export"),
    path(WS + "keys/<uuid:key_id>/", rbac.key_access, name="key-access"),
    path(WS + "keys/", apikeys.service_keys, name="service-keys"),
    path(WS + "keys/<uuid:key_id>/revoke/", apikeys.service_key_revoke, name="service-key-revoke"),
    path(WS + "keys/<uuid:key_id>/rotate/", apikeys.service_key_rotate, name="service-key-rotate"),
    path(
        WS + "keys/<uuid:key_id>/ip-allow-list/",
        apikeys.service_key_ip_allow_list,
        name="service-key-ip-allow-list",
    ),
    path(WS, include("accesscontrol.resources.urls")),
]

# The SDK's root paths (/sessions, /runs/batch, ...) last: the console's own pages win.
urlpatterns.append(path("", include(api_urls.sdk_root)))

handler404 = "accesscontrol.accounts.views.not_found"
handler500 = "accesscontrol.accounts.views.server_error"

"""Audit events in words: "Ada Admin changed Ed Editor's role in production from Editor to
Viewer", with the before/after as a readable diff, never raw action codes, model names or dicts.

`described(events)` is used by the console's audit log; the CSV export and the API keep the
stored codes, which programs read.
"""

import re
from dataclasses import dataclass

from accesscontrol.accounts.models import User
from accesscontrol.rbac.permissions import describe_permissions

# {actor} is the one who acted, {target} the object, {workspace} " in <name>" when there is one.
SENTENCES = {
    "workspace_member.added": "{actor} added {target} to {ws}",
    "workspace_member.removed": "{actor} removed {target} from {ws}",
    "workspace_member.role_changed": "{actor} changed {target_s} role in {ws}",
    "org_member.added": "{actor} added {target} to the organization",
    "org_member.removed": "{actor} removed {target} from the organization",
    "org_member.role_changed": "{actor} changed {target_s} organization role",
    "invitation.sent": "{actor} invited {target}",
    "invitation.resent": "{actor} sent the invitation to {target} again",
    "invitation.cancelled": "{actor} cancelled the invitation to {target}",
    "invitation.accepted": "{actor} accepted the invitation to {target}",
    "login.failed": "A sign-in as {target} failed",
    "login.succeeded": "{actor} signed in",
    "organization.created": "{actor} created the organization {target}",
    "organization.plan_changed": "{actor} changed the plan",
    "organization.settings_changed": "{actor} changed the organization's settings",
    "organization.ip_allow_list_changed": "{actor} changed the organization's IP allow list",
    "organization.mfa_requirement_changed": "{actor} changed who must use two-factor sign-in",
    "mfa.enabled": "{actor} added {target} as a second sign-in factor",
    "mfa.disabled": "{actor} removed {target} as a second sign-in factor",
    "personal_access_token.created": "{actor} created {key}",
    "personal_access_token.revoked": "{actor} revoked {key}",
    "personal_access_token.deleted": "{actor} deleted {key}",
    "service_key.created": "{actor} created {key}{in_ws}",
    "service_key.revoked": "{actor} revoked {key}{in_ws}",
    "service_key.rotated": "{actor} rotated {key}{in_ws}",
    "service_key.ip_allow_list_changed": ("{actor} changed the IP allow list of {key}"),
    "service_key.legacy_imported": "{actor} imported {key}",
    "service_key.legacy_refused": "{Key} was refused",
    "role.created": "{actor} created the role {target}",
    "role.updated": "{actor} changed the role {target}",
    "role.deleted": "{actor} deleted the role {target}",
    "workspace.created": "{actor} created the workspace {target}",
    "workspace.renamed": "{actor} renamed the workspace {target}",
    "workspace.archived": "{actor} archived the workspace {target}",
    "workspace.restored": "{actor} restored the workspace {target}",
    "workspace.deleted": "{actor} deleted the workspace {target}",
    "project.deleted": "{actor} deleted the tracing project {target}{in_ws}",
    "dataset.deleted": "{actor} deleted the dataset {target}{in_ws}",
    "prompt.deleted": "{actor} deleted the prompt {target}{in_ws}",
    "annotation_queue.deleted": "{actor} deleted the annotation queue {target}{in_ws}",
    "access_review.started": "{actor} started the access review {target}",
    "access_review.decided": "{actor} decided on {target} in an access review",
    "access_review.completed": "{actor} completed the access review {target}",
    "access_request.created": "{actor} asked for access{in_ws}",
    "access_request.approved": "{actor} approved {target_s} access request{in_ws}",
    "access_request.denied": "{actor} denied {target_s} access request{in_ws}",
    "access_request.closed": "{actor} closed {target_s} access request{in_ws}",
    "workspace_member.grant_expired": "{target_s} time-bound grant in {ws} ended",
    "share_link.created": "{actor} made a share link to {target}{in_ws}",
    "share_link.revoked": "{actor} revoked the share link to {target}{in_ws}",
    "feedback_token.created": "{actor} made a presigned feedback link for {target}{in_ws}",
    "sso.configured": "{actor} changed the organization's single sign-on",
    "sso.removed": "{actor} removed the organization's single sign-on",
    "sso.domain_claimed": "{actor} claimed the email domain {target}",
    "sso.domain_released": "{actor} released the email domain {target}",
    "sso.sign_in_refused": "A single sign-on as {target} was refused",
    "sso.account_linked": "{actor} linked {target} to the identity provider",
    "audit.partition_dropped": "{actor} dropped audit events older than the retention ({target})",
    "scim_settings.changed": "{actor} changed the organization role of provisioned people",
    "scim_token.created": "{actor} created the organization's SCIM token",
    "scim_token.rotated": "{actor} rotated the organization's SCIM token",
    "scim_token.revoked": "{actor} revoked the organization's SCIM token",
    "scim_user.created": "{actor} provisioned {target}",
    "scim_user.updated": "{actor} changed {target_s} identity-provider attributes",
    "scim_user.deactivated": "{actor} deactivated {target}",
    "scim_user.reactivated": "{actor} reactivated {target}",
    "scim_user.deleted": "{actor} deleted {target}",
    "scim_group.created": "{actor} created the group {target}",
    "scim_group.updated": "{actor} changed the group {target}",
    "scim_group.deleted": "{actor} deleted the group {target}",
    "scim_group.member_added": "{actor} added a member to the group {target}",
    "scim_group.member_removed": "{actor} removed a member from the group {target}",
    "scim_mapping.created": "{actor} mapped the group {target} to {ws}",
    "scim_mapping.changed": "{actor} changed the role the group {target} maps to in {ws}",
    "scim_mapping.removed": "{actor} removed the mapping of the group {target} to {ws}",
}

# Field names in before/after, as people say them.
FIELDS = {
    "role": "role",
    "org_role": "organization role",
    "plan": "plan",
    "name": "name",
    "slug": "address",
    "ip_allow_list": "IP allow list",
    "expires_at": "expires",
    "role_after_expiry": "role after expiry",
    "status": "status",
    "hint": "key",
    "workspaces": "workspaces",
    "permissions": "permissions",
    "archived": "archived",
    "reason": "reason",
    "via": "through",
    "provider": "identity provider",
    "protocol": "protocol",
    "oidc_issuer": "OIDC issuer",
    "oidc_client_id": "OIDC client id",
    "oidc_client_secret": "OIDC client secret",
    "saml_entity_id": "SAML entity id",
    "saml_metadata_url": "SAML metadata URL",
    "saml_metadata": "SAML metadata",
    "jit_provisioning": "just-in-time provisioning",
    "default_org_role": "default organization role",
    "default_workspace_roles": "default workspace roles",
    "invitations_enabled": "invitations allowed",
    "require_sso": "single sign-on required",
    "break_glass_admin": "break-glass admin",
    "domain": "email domain",
    "max_key_lifetime_days": "longest key lifetime (days)",
    "allow_personal_access_tokens": "personal access tokens allowed",
    "sessions_ended": "sessions ended",
    "member": "member",
    "userName": "user name",
    "externalId": "external id",
    "displayName": "display name",
}
# A change of one of these reads as part of the sentence: "... from Editor to Viewer".
INLINE = {"role", "org_role", "plan", "name"}


@dataclass
class Change:
    field: str
    before: str | None
    after: str | None


@dataclass
class Described:
    event: object
    sentence: str
    changes: list


def action_label(action: str) -> str:
    """An action code for a filter menu: "workspace_member.role_changed" -> "Workspace member
    role changed"."""
    words = action.replace(".", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def field_label(key: str) -> str:
    return FIELDS.get(key, key.replace("_", " "))


def value_text(value) -> str:
    if value is None or value == "" or value == []:
        return "none"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, list | tuple):
        return ", ".join(value_text(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(
            f"{FIELDS.get(k, k.replace('_', ' '))}: {value_text(v)}" for k, v in value.items()
        )
    return str(value)


def _value(key, value) -> str:
    if key == "permissions" and isinstance(value, list):
        return describe_permissions(value)  # a role's codes, in words
    return value_text(value)


def _changes(changes) -> list[Change]:
    before = changes.get("before") or {}
    after = changes.get("after") or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [Change("details", value_text(before) or None, value_text(after) or None)]
    rows = []
    for key in [*before, *(k for k in after if k not in before)]:
        rows.append(
            Change(
                field_label(key),
                _value(key, before[key]) if key in before else None,
                _value(key, after[key]) if key in after else None,
            )
        )
    return rows


def _possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def describe(event, names) -> Described:
    """One event in words; `names` maps emails to people's names (one query for a page)."""
    actor = names.get(event.actor_label, event.actor_label) or "Someone"
    if event.actor_kind == "system":
        actor = "The system" if event.actor_label in ("", "system") else event.actor_label
    elif event.actor_kind == "scim_token":  # the identity provider, through its token
        actor = "SCIM (" + event.actor_label.removeprefix("SCIM ") + ")"
    elif event.actor_kind != "user":  # a key: its label says which ("service key 'ci'")
        actor = actor[:1].upper() + actor[1:]
    target = names.get(event.target_label, event.target_label) or "something"
    workspace = event.workspace.name if event.workspace_id and event.workspace else ""
    # A key's label already says what it is ("service key 'ci'"); older rows may not.
    named_kind = re.match(r"(legacy )?(service key|personal access token) ", target)
    kind = "personal access token" if event.action.startswith("personal") else "service key"
    key = f"the {target}" if named_kind else f"the {kind} {target}"
    template = SENTENCES.get(event.action)
    if template is None:
        text = f"{actor}: {action_label(event.action).lower()}"
        text += f" ({target})" if event.target_label else ""
    else:
        text = template.format(
            actor=actor,
            target=target,
            target_s=_possessive(target),
            ws=workspace or "a workspace",
            in_ws=f" in {workspace}" if workspace else "",
            key=key,
            Key=key[:1].upper() + key[1:],
        )
    changes = _changes(event.changes or {})
    inline = [c for c in changes if c.before and c.after]
    if len(changes) == 1 and inline and event.changes["before"].keys() <= INLINE:
        text += f" from {inline[0].before} to {inline[0].after}"
        changes = []
    return Described(event=event, sentence=text + ".", changes=changes)


def described(events) -> list[Described]:
    """A page of events in words, with one query for the names of the people they mention."""
    emails = {e.actor_label for e in events} | {e.target_label for e in events}
    emails = {e for e in emails if "@" in e}
    names = {
        email: name
        for email, name in User.objects.filter(email__in=emails)
        .exclude(full_name="")
        .values_list("email", "full_name")
    }
    return [describe(e, names) for e in events]

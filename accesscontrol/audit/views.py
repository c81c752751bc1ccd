from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accesscontrol import console, csv_export
from accesscontrol.audit import log, ocsf, sentences
from accesscontrol.audit.models import AuditEvent
from accesscontrol.rbac.gate import requires


def _filters(request):
    try:
        return log.Filters.from_query(request.GET), None
    except ValidationError as exc:
        return log.Filters(), console.errors_of(exc)


@requires("organization:manage")
@require_GET
def audit_log(request, org_slug):
    org = request.organization
    filters, error = _filters(request)
    events, next_cursor = [], None
    if error is None:
        try:
            events, next_cursor = log.page(log.events(org, filters), request.GET.get("cursor"))
        except ValidationError as exc:
            error = console.errors_of(exc)
    if error:
        # Refused, not ignored: no events rather than the unfiltered log under the error.
        messages.error(request, error)
    context = {
        "events": sentences.described(events),
        "next_cursor": next_cursor,
        "filters": filters,
        "query": filters.as_query(),
        "workspaces": org.workspaces.order_by("name"),
        "actions": [
            (action, sentences.action_label(action))
            for action in AuditEvent.objects.for_organization(org)
            .order_by("action")
            .values_list("action", flat=True)
            .distinct()
        ],
    }
    fragment = "more-rows" if request.GET.get("cursor") else "results"
    template = console.page_or_fragment(request, "audit/log.html", fragment)
    # 422: htmx swaps it in (base.html), so the results show the refusal, not stale rows.
    return render(request, template, context, status=422 if error else 200)


def _refused_export(request, org_slug, error):
    # Never export more than was asked for: a filter we cannot read is an error.
    messages.error(request, error)
    response = audit_log(request, org_slug)
    response.status_code = 400
    return response


@requires("organization:manage")
@require_GET
def audit_export(request, org_slug):
    filters, error = _filters(request)
    if error:
        return _refused_export(request, org_slug, error)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    return csv_export.download(
        f"audit-{request.organization.slug}-{stamp}.csv",
        log.csv_rows(log.events(request.organization, filters)),
    )


@requires("organization:manage")
@require_GET
def audit_export_ocsf(request, org_slug):
    """The same events as OCSF API Activity JSON lines (audit/ocsf.py), as GET
    /api/v1/audit-logs/export gives them."""
    filters, error = _filters(request)
    if error:
        return _refused_export(request, org_slug, error)
    org = request.organization
    return ocsf.download(org, ocsf.lines(log.events(org, filters)))

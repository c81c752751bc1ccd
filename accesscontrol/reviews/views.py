import datetime
from datetime import UTC

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accesscontrol import console
from accesscontrol.rbac.gate import requires
from accesscontrol.reviews import services
from accesscontrol.reviews.models import Campaign, Item
from accesscontrol.workspaces.models import Workspace


class CampaignForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=120, initial=lambda: f"Access review {timezone.now():%B %Y}"
    )
    workspace = forms.ModelChoiceField(
        label="Scope",
        queryset=Workspace.objects.none(),
        required=False,
        empty_label="The whole organization",
    )
    deadline = forms.DateField(
        label="Decide by",
        widget=forms.DateInput(attrs={"type": "date"}),
        initial=lambda: (timezone.now() + datetime.timedelta(days=14)).date(),
    )

    def __init__(self, organization, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workspace"].queryset = organization.workspaces.filter(archived=False)


def _campaigns_url(org):
    return reverse("campaigns", args=[org.slug])


def _campaign(request, campaign_id):
    return get_object_or_404(
        Campaign.objects.filter(organization=request.organization).select_related("workspace"),
        pk=campaign_id,
    )


CAMPAIGNS = console.Listing(
    sorts={
        "name": ("Review", ("name",)),
        "deadline": ("Deadline", ("deadline",)),
        "started": ("Started", ("created_at",)),
    },
    default="-started",
    search=("name", "created_by_label"),
    statuses={
        "open": ("Open", lambda: Q(completed_at__isnull=True)),
        "completed": ("Completed", lambda: Q(completed_at__isnull=False)),
    },
    per_page=25,
)


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
def campaigns(request, org_slug):
    org = request.organization
    form = CampaignForm(org, request.POST or None)

    def start(data):
        deadline = datetime.datetime.combine(data["deadline"], datetime.time(23, 59), tzinfo=UTC)
        campaign = services.start_campaign(
            actor=request.actor,
            organization=org,
            name=data["name"],
            workspace=data["workspace"],
            deadline=deadline,
        )
        message = f"Review “{campaign.name}” started with {campaign.items.count()} item(s)."
        return message, reverse("campaign", args=[org.slug, campaign.pk])

    if response := console.saved(request, form, start):
        return response
    listed = console.listed(
        request, services.with_progress(org.review_campaigns.select_related("workspace")), CAMPAIGNS
    )
    context = {"campaigns": listed.page.object_list, "list": listed, "page": listed.page}
    return console.form_page(request, "reviews/campaigns.html", form, context, fragment=None)


ITEMS = console.Listing(
    sorts={
        "label": ("Who or what", ("label", "kind")),
        "kind": ("Kind", ("kind", "label")),
        "decision": ("Decision", ("decision", "label")),
    },
    default="kind",
    search=("label", "detail"),
    statuses={
        "undecided": ("Undecided", lambda: Q(decision="")),
        Item.KEEP: ("Kept", lambda: Q(decision=Item.KEEP)),
        Item.REVOKE: ("To revoke", lambda: Q(decision=Item.REVOKE)),
        "stale": ("Stale", lambda: Q(stale=True)),
    },
    per_page=100,
)


@requires("organization:manage")
@require_GET
def campaign_detail(request, org_slug, campaign_id):
    campaign = _campaign(request, campaign_id)
    items = console.listed(request, campaign.items.all(), ITEMS)
    return render(
        request,
        "reviews/campaign.html",
        {
            "campaign": campaign,
            "list": items,
            "page": items.page,
            "q": items.q,
            "items": items.page.object_list,
            **_progress(campaign),
        },
    )


def _progress(campaign) -> dict:
    counts = campaign.items.aggregate(
        in_review=Count("pk"),
        undecided=Count("pk", filter=Q(decision="")),
        revokes=Count("pk", filter=Q(decision=Item.REVOKE)),
    )
    return counts


@requires("organization:manage")
@require_POST
def campaign_decide(request, org_slug, campaign_id):
    """One item (the row's buttons) or many (the checkboxes), keep or revoke."""
    campaign = _campaign(request, campaign_id)
    url = reverse("campaign", args=[request.organization.slug, campaign.pk])
    if "item" in request.GET:  # a row's own button: that item only
        ids, decision = [request.GET["item"]], request.GET.get("decision", "")
    elif request.POST.get("scope") == "undecided":
        ids = list(campaign.items.filter(decision="").values_list("pk", flat=True))
        decision = request.POST.get("decision", "")
    else:
        ids, decision = request.POST.getlist("item"), request.POST.get("decision", "")
    ids = [i for i in map(str, ids) if console.is_uuid(i)]
    try:
        count = services.decide(
            actor=request.actor, campaign=campaign, item_ids=ids, decision=decision
        )
    except ValidationError as exc:
        return console.done(request, console.errors_of(exc), url, messages.ERROR)
    if request.htmx and len(ids) == 1:
        item = campaign.items.get(pk=ids[0])
        context = {"campaign": campaign, "item": item, "oob": True, **_progress(campaign)}
        # The row, and out of band the campaign's progress ("N undecided") above the table
        # (in a <template>, so a <dd> survives being parsed beside a table row).
        response = HttpResponse(
            render_to_string("reviews/campaign.html#item-row", context, request)
            + "<template>"
            + render_to_string("reviews/campaign.html#progress", context, request)
            + "</template>"
        )
        response["HX-Trigger"] = console.toast_header(
            f"{item.label}: {item.get_decision_display().lower()}."
        )
        return response
    return console.done(request, f"{count} item(s) marked {decision}.", url)


@requires("organization:manage")
@require_http_methods(["GET", "POST"])
def campaign_complete(request, org_slug, campaign_id):
    campaign = _campaign(request, campaign_id)
    url = reverse("campaign", args=[request.organization.slug, campaign.pk])
    if request.method == "GET":
        revokes = campaign.items.filter(decision=Item.REVOKE)
        return console.confirm(
            request,
            title=f"Complete “{campaign.name}”?",
            message=f"{revokes.count()} revocation(s) are applied at once, all or none; "
            "the decisions become final.",
            consequences=[f"{i.label} — {i.detail}" for i in revokes[:20]],
            action=request.path,
            cancel_url=url,
            confirm_label="Complete and apply",
        )
    return console.attempt(
        request,
        lambda: services.complete_campaign(actor=request.actor, campaign=campaign),
        lambda result: f"Review completed: {result['revoked']} revoked, {result['kept']} kept.",
        url,
    )

"""Responses every console page shares: confirmations, outcomes and form errors.

One view serves the full page and, for htmx, the fragment; destructive actions go through a
confirmation page that works without JavaScript and opens in a dialog with it.
"""

import json
import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render


def confirm(request, *, title, message, action, cancel_url, confirm_label, consequences=()):
    template = "confirm.html#dialog" if request.htmx else "confirm.html"
    return render(
        request,
        template,
        {
            "title": title,
            "message": message,
            "action": action,
            "cancel_url": cancel_url,
            "confirm_label": confirm_label,
            "consequences": consequences,
        },
    )


def done(request, message, url, level=messages.SUCCESS):
    """After a change: flash the outcome and go to `url` (HX-Redirect for htmx requests)."""
    messages.add_message(request, level, message)
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def toast_header(message, level="success") -> str:
    return json.dumps({"toast": {"message": message, "level": level}})


def errors_of(exc: ValidationError) -> str:
    """One sentence for people, whatever shape the ValidationError has."""
    if hasattr(exc, "error_dict"):
        return " ".join(m for errors in exc.message_dict.values() for m in errors)
    return " ".join(exc.messages)


def add_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form fields it names (else on the form)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def is_uuid(value) -> bool:
    """Ids in forms and URLs are checked before they reach a query (no 500 on garbage)."""
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True

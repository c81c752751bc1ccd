"""The sessions remembered at sign-in (accounts/sessions.py, SignedInSession) go with their
session, however it ends: signing out, a new sign-in's key, `clearsessions` for expired ones."""

import datetime
import io

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from accesscontrol.accounts.models import SignedInSession
from tests.factories import PASSWORD


def sign_in(client, user):
    response = client.post("/login/", {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content[:300]
    return client.session.session_key


def remembered(user):
    return sorted(SignedInSession.objects.filter(user=user).values_list("session_id", flat=True))


def test_signing_in_remembers_the_session_and_signing_out_forgets_it(client, world):
    key = sign_in(client, world.editor)
    assert remembered(world.editor) == [key]

    client.post("/logout/")

    assert not Session.objects.filter(session_key=key).exists()
    assert remembered(world.editor) == []


def test_someone_else_signing_in_forgets_the_session_they_replace(client, world):
    first = sign_in(client, world.editor)
    # Another person signs in in the same browser: login() deletes the session it replaces.
    client.force_login(world.viewer)
    second = client.session.session_key

    assert second != first and not Session.objects.filter(session_key=first).exists()
    assert remembered(world.editor) == []
    assert remembered(world.viewer) == [second]


def test_clearsessions_takes_the_expired_sessions_remembered_with_it(client, world):
    other_browser = Client()
    expired = sign_in(client, world.editor)
    live = sign_in(other_browser, world.editor)
    Session.objects.filter(session_key=expired).update(
        expire_date=timezone.now() - datetime.timedelta(seconds=1)
    )

    call_command("clearsessions", stdout=io.StringIO())

    assert remembered(world.editor) == [live]
    assert not other_browser.get("/")["Location"].startswith("/login/")  # still signed in


def test_no_session_can_be_remembered_that_does_not_exist(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        SignedInSession.objects.create(user=world.editor, session_id="no-such-session")
        # PostgreSQL checks the (deferred) foreign key at commit; make it check now.
        with transaction.get_connection().cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

"""Console pages as a persona opens them, and the session behind them."""

from django.contrib.auth import SESSION_KEY as AUTH_SESSION_KEY


def open_as(client, world, persona, url, status, required):
    """GET `url` signed in as `persona`: it answers `status`, and a 403 names `required`."""
    client.force_login(world.persona(persona))
    response = client.get(url)
    assert response.status_code == status, url
    if status == 403:
        assert response["X-Required-Permission"] == required
    return response


def signed_in(client) -> bool:
    return AUTH_SESSION_KEY in client.session


def failed_sign_in(client, user_agent, request_id):
    """A wrong password for an unknown address, sent with a user agent and a request id: one
    login.failed audit row that belongs to no organization."""
    response = client.post(
        "/login/",
        {"login": "nobody@example.test", "password": "wrong"},
        HTTP_USER_AGENT=user_agent,
        HTTP_X_REQUEST_ID=request_id,
    )
    assert response.status_code == 400
    return response

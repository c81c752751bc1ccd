"""Hypothesis settings for the property tests whose examples run against the test database."""

from hypothesis import HealthCheck, settings


def db_examples(max_examples, **more):
    """`max_examples` examples, each running queries: no deadline (a query's time is not the
    property), no example database written into the project, and the function-scoped fixtures
    (db, client) shared by every example on purpose: each example rolls its writes back."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        **more,
    )

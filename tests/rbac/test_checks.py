from django.core.management import call_command

from accesscontrol.rbac.checks import check_every_view_declares_access, iter_url_patterns
from accesscontrol.rbac.gate import rule_of


def test_every_project_route_declares_access():
    assert check_every_view_declares_access() == []
    routes = list(iter_url_patterns(__import__("accesscontrol.urls").urls.urlpatterns))
    assert len(routes) >= 8
    assert all(rule_of(view) is not None for _, view in routes)


def test_manage_py_check_is_clean(db, capsys, settings):
    settings.AUTHZ_CACHE = False  # the tests force it on with a local cache: see the next test
    call_command("check")
    assert "no issues" in capsys.readouterr().out


def test_a_principal_cache_without_a_shared_cache_is_warned_about(settings):
    from accesscontrol.rbac.checks import check_authorization_cache_is_shared

    settings.AUTHZ_CACHE, settings.SHARED_CACHE, settings.DEBUG = True, False, False
    assert [w.id for w in check_authorization_cache_is_shared()] == ["rbac.W001"]
    settings.SHARED_CACHE = True
    assert check_authorization_cache_is_shared() == []
    settings.SHARED_CACHE, settings.AUTHZ_CACHE = False, False
    assert check_authorization_cache_is_shared() == []

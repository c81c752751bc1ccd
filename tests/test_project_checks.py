from django.core.management import call_command

from accesscontrol.rbac.checks import check_every_view_declares_access, iter_url_patterns
from accesscontrol.rbac.gate import rule_of


def test_every_project_route_declares_access():
    assert check_every_view_declares_access() == []
    routes = list(iter_url_patterns(__import__("accesscontrol.urls").urls.urlpatterns))
    assert len(routes) >= 8
    assert all(rule_of(view) is not None for _, view in routes)


def test_manage_py_check_is_clean(db, capsys):
    call_command("check")
    assert "no issues" in capsys.readouterr().out

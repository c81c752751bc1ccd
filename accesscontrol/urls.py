from django.urls import include, path

from accesscontrol.accounts import views as accounts
from accesscontrol.organizations import views as organizations
from accesscontrol.workspaces import views as workspaces

urlpatterns = [
    path("", accounts.home, name="home"),
    path("login/", accounts.login_view, name="login"),
    path("logout/", accounts.logout_view, name="logout"),
    path("healthz", accounts.health, name="health"),
    path("invitations/<str:token>/", organizations.accept_invitation, name="invitation-accept"),
    path("o/<slug:org_slug>/", organizations.org_overview, name="org-overview"),
    path("o/<slug:org_slug>/members/", organizations.org_members, name="org-members"),
    path(
        "o/<slug:org_slug>/w/<slug:workspace_slug>/",
        workspaces.workspace_home,
        name="workspace-home",
    ),
    path(
        "o/<slug:org_slug>/w/<slug:workspace_slug>/members/",
        workspaces.workspace_members,
        name="workspace-members",
    ),
    path("", include("accesscontrol.api.urls")),
]

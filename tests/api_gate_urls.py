"""A URLconf for the API gate's structure tests: the project's URLs, plus a NinjaAPI that was
built without build_api and mounted without gated_urls (as an app might, forgetting both)."""

from django.urls import include, path
from ninja import NinjaAPI

raw = NinjaAPI(urls_namespace="raw", docs_url=None, openapi_url=None)


@raw.get("/raw-things")
def raw_things(request):
    return []


urlpatterns = [
    path("raw/", raw.urls),
    path("", include("accesscontrol.urls")),
]

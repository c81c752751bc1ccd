"""The project's settings, plus the peer the benchmark compares against (section 2).

djangorestframework and djangorestframework-api-key are installed in .venv-bench only. The
middleware stack, database and cache are the project's own, so every variant measured in one
run passes through the same Django.
"""

from accesscontrol.settings import *  # noqa: F403
from accesscontrol.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework", "rest_framework_api_key"]
ROOT_URLCONF = "bench.urls"

# The DRF view is as lean as DRF allows, so the comparison is fair to the peer: no session or
# basic authentication to run first, JSON only, and the key read from X-API-Key as ours is.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}
API_KEY_CUSTOM_HEADER = "HTTP_X_API_KEY"

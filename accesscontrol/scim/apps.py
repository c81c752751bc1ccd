import logging

from django.apps import AppConfig


class ScimConfig(AppConfig):
    name = "accesscontrol.scim"
    label = "scim"

    def ready(self):
        # scim2-models parses with lark, which gives its logger a stderr handler of its own
        # when imported: that handler must hide keys like every other (apikeys/redaction.py).
        import scim2_models  # noqa: F401

        from accesscontrol.apikeys.redaction import RedactKeysFilter

        for handler in logging.getLogger("lark").handlers:
            if not any(isinstance(f, RedactKeysFilter) for f in handler.filters):
                handler.addFilter(RedactKeysFilter())

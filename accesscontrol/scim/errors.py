"""SCIM errors (RFC 7644 §3.12): every refusal is one of these, answered in the Error schema."""

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None, headers=None):
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type
        self.headers = headers or {}

    def body(self) -> dict:
        body = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


def invalid_value(detail):
    return ScimError(400, detail, "invalidValue")


def invalid_path(detail):
    return ScimError(400, detail, "invalidPath")


def invalid_syntax(detail):
    return ScimError(400, detail, "invalidSyntax")


def invalid_filter(detail):
    return ScimError(400, detail, "invalidFilter")


def not_found(what="resource"):
    return ScimError(404, f"No such {what}.")


def uniqueness(detail):
    return ScimError(409, detail, "uniqueness")


def version_mismatch():
    return ScimError(412, "The resource changed since you read it (If-Match does not match).")

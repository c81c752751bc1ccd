"""Shapes shared by several routers."""

from ninja import Schema
from pydantic import model_validator


class ErrorOut(Schema):
    error: str
    detail: object


class DeniedOut(ErrorOut):
    required: str | None = None
    principal: str | None = None
    role: str | None = None
    workspace: str | None = None


class Body(Schema):
    """The base of every request body: a JSON object, and nothing else.

    ninja's Schema reads its input by attribute access, so without this a body of `0`, `null`
    or `"text"` would pass as an object whose every field is missing.
    """

    @model_validator(mode="before")
    @classmethod
    def _a_json_object(cls, data):
        # ninja may hand over its DjangoGetter wrapper; what counts is what it wraps.
        if not isinstance(getattr(data, "_obj", data), dict):
            raise ValueError("The request body must be a JSON object.")
        return data

"""Shapes shared by several routers."""

import datetime
from typing import Annotated

from ninja import Schema
from pydantic import AfterValidator, ValidationInfo, model_validator

from accesscontrol import storable


def _storable_datetime(value: datetime.datetime, info: ValidationInfo) -> datetime.datetime:
    try:
        return storable.check_datetime(value)
    except ValueError as exc:
        raise ValueError(f"{info.field_name} {exc}") from None


# Every date-time an API request carries (body or query): one that leaves years 1-9999 once
# converted to UTC would be stored and then be unreadable (see accesscontrol/storable.py).
UtcDateTime = Annotated[datetime.datetime, AfterValidator(_storable_datetime)]


class ErrorOut(Schema):
    error: str
    detail: object


class DeniedOut(ErrorOut):
    required: str | None = None
    principal: str | None = None
    role: str | None = None
    workspace: str | None = None
    limit: str | None = None  # token_limit: the narrowed token's limits, in words
    # ip_not_allowed: the address the request came from, and which list refused it.
    address: str | None = None
    allow_list: str | None = None


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

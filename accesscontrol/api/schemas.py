"""Shapes shared by several routers."""

import datetime
from typing import Annotated, Any

from ninja import Schema
from pydantic import (
    AfterValidator,
    ConfigDict,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from accesscontrol import storable


def _storable_datetime(value: datetime.datetime, info: ValidationInfo) -> datetime.datetime:
    try:
        return storable.check_datetime(value)
    except ValueError as exc:
        raise ValueError(f"{info.field_name} {exc}") from None


# Every date-time an API request carries (body or query): one that leaves years 1-9999 once
# converted to UTC would be stored and then be unreadable (see accesscontrol/storable.py).
UtcDateTime = Annotated[datetime.datetime, AfterValidator(_storable_datetime)]


def _asks_nothing(value: Any, info: ValidationInfo) -> None:
    if not (value is None or value is False or value in ({}, [], "")):
        raise ValueError(
            f"{info.field_name} is not supported by this server: leave it out or send it empty"
        )


# A field the SDKs always send, usually empty, for a feature this server does not have: empty
# (null, false, {}, [], "") it asks for nothing and is accepted; with content it is refused (422
# naming it), since dropping it would answer as if it had been honoured.
Unsupported = Annotated[
    Any,
    AfterValidator(_asks_nothing),
    WithJsonSchema(
        {
            "description": "Not supported by this server: accepted only empty.",
            "anyOf": [
                {"type": "null"},
                {"const": False},
                {"type": "object", "maxProperties": 0},
                {"type": "array", "maxItems": 0},
                {"const": ""},
            ],
        }
    ),
]


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
    """The base of every request body: a JSON object with only the fields its schema declares.

    ninja's Schema reads its input by attribute access, so without this a body of `0`, `null`
    or `"text"` would pass as an object whose every field is missing. A field the schema does
    not declare is refused (422 naming it), never dropped: a dropped filter or setting answers
    200 with something other than what the client asked for. A field a client sends that may be
    ignored without changing the answer is declared in its schema, with why.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _a_json_object(cls, data):
        # ninja may hand over its DjangoGetter wrapper; what counts is what it wraps.
        if not isinstance(getattr(data, "_obj", data), dict):
            raise ValueError("The request body must be a JSON object.")
        return data

"""Shapes shared by several routers."""

from ninja import Schema


class ErrorOut(Schema):
    error: str
    detail: object


class DeniedOut(ErrorOut):
    required: str | None = None
    principal: str | None = None
    role: str | None = None
    workspace: str | None = None

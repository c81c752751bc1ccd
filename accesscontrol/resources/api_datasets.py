"""Datasets as LangSmith users curate them: CSV upload, bulk changes, splits, versions and tags,
and the multipart examples endpoints the JS SDK writes examples through (issue #18).

Paths, payloads and answers follow the official SDKs (python/langsmith/client.py and
js/src/client.ts) and LangSmith's OpenAPI description. Handlers parse, read inside the request's
workspace and change data only through resources/services.py with the request's actor; history
is read through resources/selectors.py.

Three routers: `router` for the new /datasets/... paths, `platform_router` for LangSmith's
/platform/... paths (mounted under /api/v1/ and, as the SDKs call it on the bare server URL,
under /v1/), and two operations added to resources.api.router, whose paths they share
(PATCH /examples/bulk beside POST, DELETE /examples beside GET): one path is one URL pattern.
"""

import uuid
from email import policy
from email.parser import BytesParser

import pydantic
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from ninja import Query, Schema, Status
from ninja.errors import ValidationError as InvalidInput
from pydantic import Field

from accesscontrol import storable
from accesscontrol.api.router import GatedRouter
from accesscontrol.rbac.gate import requires
from accesscontrol.resources import api as resources_api
from accesscontrol.resources import models, selectors, services
from accesscontrol.resources.api import counted, one, ws
from accesscontrol.resources.schemas import (
    DatasetOut,
    DatasetVersionOut,
    ExampleBulkPatch,
    ExampleIn,
    ExamplePatch,
    ExamplesChanged,
    HardDeleteIn,
    MetadataPatch,
    MetadataPatched,
    SplitsIn,
    TagIn,
    VersionDiffOut,
    VersionDiffQuery,
    VersionFilter,
    VersionQuery,
)

TAG = "resources (LangSmith-compatible)"
router = GatedRouter(tags=[TAG])
platform_router = GatedRouter(tags=[TAG])

MAX_PARTS = 30_000  # a multipart body's parts (three per example, the SDKs' batches fit)


def _dataset(request, dataset_id):
    return one(request, models.Dataset, dataset_id)


def _changed(examples, what, version=None) -> dict:
    ids = [e.pk for e in examples]
    return {
        "message": f"{len(ids)} examples {what}",
        "count": len(ids),
        "example_ids": ids,
        "as_of": version.as_of if version else None,
    }


# Multipart bodies


def _invalid(field, message):
    return ValidationError({field: message})


def multipart_parts(request) -> list[tuple[str, str | None, bytes]]:
    """(name, file name, content) of each part of a multipart/form-data body, in order.

    Parsed here rather than by Django's request.POST, whose field and file counts (1,000 and
    100) are far below what one SDK batch of examples sends; the body's size stays capped by
    DATA_UPLOAD_MAX_MEMORY_SIZE (a 413), and the parts by MAX_PARTS.
    """
    content_type = request.META.get("CONTENT_TYPE", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise _invalid("body", "Send the body as multipart/form-data.")
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    message = BytesParser(policy=policy.HTTP).parsebytes(head + request.body)
    if not message.is_multipart() or message.defects:
        raise _invalid("body", "The multipart body cannot be read.")
    parts = []
    for part in message.iter_parts():
        if len(parts) >= MAX_PARTS:
            raise _invalid("body", f"A multipart body may hold at most {MAX_PARTS} parts.")
        name = part.get_param("name", header="content-disposition")
        if not name:
            raise _invalid("body", "Every part of the body needs a name.")
        parts.append((str(name), part.get_filename(), part.get_payload(decode=True) or b""))
    return parts


def _json_part(name, content: bytes):
    try:
        return storable.load_json(content)
    except (storable.JsonTooDeep, storable.JsonUnstorable) as exc:
        raise _invalid(name, str(exc)) from None
    except ValueError:
        raise _invalid(name, f"The part {name!r} is not JSON.") from None


def _text_part(name, content: bytes) -> str:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid(name, f"{name} is not UTF-8 text.") from None
    if "\x00" in text:
        raise _invalid(name, f"{name} holds a NUL character.")
    return text


def _examples_of_parts(parts) -> dict[str, dict]:
    """{example id: its fields} from LangSmith's parts: `<id>` (a JSON object of the example's
    other fields), `<id>.inputs`, `<id>.outputs`; attachments are refused (none are kept)."""
    examples: dict[str, dict] = {}
    for name, _, content in parts:
        example_id, _, field = name.partition(".")
        if field.startswith("attachment") or field == "attachments_operations":
            raise _invalid(field, "Attachments are not supported by this server.")
        if field not in ("", "inputs", "outputs"):
            raise _invalid(name, f"Unknown part {name!r}.")
        fields = examples.setdefault(example_id, {})
        value = _json_part(name, content)
        if field:
            fields[field] = value
        elif not isinstance(value, dict):
            raise _invalid(name, f"The part {name!r} must be a JSON object.")
        else:
            fields.update({k: v for k, v in value.items() if k not in ("inputs", "outputs")})
    if not examples:
        raise _invalid("body", "The body holds no examples.")
    return examples


def _validated(schema, data: dict, where: str):
    try:
        return schema.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise InvalidInput([{**e, "loc": [where, *e["loc"]]} for e in errors]) from None


REFUSED_EXAMPLE_FIELDS = {
    "use_source_run_io": "copying a run's inputs and outputs is not supported",
    "use_source_run_attachments": "attachments are not supported",
}


def _refuse_fields(fields: dict) -> None:
    for field, why in REFUSED_EXAMPLE_FIELDS.items():
        if fields.get(field):
            raise _invalid(field, f"{field} is not supported here: {why}.")


def _multipart_examples(request, dataset, schema) -> list[dict]:
    """The examples of a multipart body, each validated as `schema` (a 422 names its part).
    The path names the dataset: a part's own dataset_id gives way to it."""
    examples = []
    for example_id, fields in _examples_of_parts(multipart_parts(request)).items():
        _refuse_fields(fields)
        data = {**fields, "id": example_id, "dataset_id": dataset.pk}
        examples.append(_validated(schema, data, example_id).dict())
    return examples


# CSV upload


CSV_FIELDS_REFUSED = (
    "input_key_mappings",
    "output_key_mappings",
    "metadata_key_mappings",
    "metadata_keys",
    "inputs_schema_definition",
    "outputs_schema_definition",
    "transformations",
)


class CsvUpload(Schema):
    name: str = Field(min_length=1, max_length=255)
    description: str = Field("", max_length=10000)
    data_type: str = Field("kv", pattern="^(kv|llm|chat)$")
    id: uuid.UUID | None = None
    input_keys: list[str] = Field(min_length=1, max_length=1000)
    output_keys: list[str] = Field(default_factory=list, max_length=1000)


@router.post(
    "/datasets/upload",
    response={201: DatasetOut},
    summary="Create a dataset from a CSV file (multipart: file, input_keys, output_keys, ...)",
)
@requires("datasets:create")
def upload_csv(request):
    fields, files = {}, []
    for name, filename, content in multipart_parts(request):
        if name == "file":
            files.append((filename, content))
        elif name in CSV_FIELDS_REFUSED:
            raise _invalid(name, f"{name} is not supported here: columns map one to one.")
        elif name in ("input_keys", "output_keys"):
            fields.setdefault(name, []).append(_text_part(name, content))
        else:
            fields[name] = _text_part(name, content)
    if len(files) != 1:
        raise _invalid("file", "Send exactly one CSV file in the part named 'file'.")
    filename, content = files[0]
    fields.setdefault("name", filename or "")
    upload = _validated(CsvUpload, fields, "form")
    dataset = services.upload_csv(
        actor=request.actor,
        workspace=ws(request),
        content=content,
        input_keys=upload.input_keys,
        output_keys=upload.output_keys,
        name=upload.name,
        description=upload.description,
        data_type=upload.data_type,
        dataset_id=upload.id,
    )
    return Status(201, counted(request, models.Dataset).get(pk=dataset.pk))


# Versions and tags


@router.get(
    "/datasets/{uuid:dataset_id}/versions",
    response=list[DatasetVersionOut],
    summary="A dataset's versions, newest first",
)
@requires("datasets:read")
def list_versions(request, dataset_id: uuid.UUID, filters: Query[VersionFilter]):
    dataset = _dataset(request, dataset_id)
    qs = models.DatasetVersion.objects.filter(dataset=dataset).order_by("-as_of")
    if filters.example is not None:
        qs = qs.filter(revisions__example_id=filters.example).distinct()
    if not filters.search:
        return list(qs[filters.offset : filters.offset + filters.limit])
    # A substring of a tag: tagged versions are few, matched here on any database.
    tagged = [v for v in qs.exclude(tags=[]) if any(filters.search in t for t in v.tags)]
    return tagged[filters.offset : filters.offset + filters.limit]


@router.get(
    "/datasets/{uuid:dataset_id}/version",
    response=DatasetVersionOut,
    summary="The dataset's version as of a time, or with a tag",
)
@requires("datasets:read")
def read_version(request, dataset_id: uuid.UUID, query: Query[VersionQuery]):
    dataset = _dataset(request, dataset_id)
    if (query.as_of is None) == (query.tag is None):
        raise _invalid("as_of", "Give exactly one of as_of and tag.")
    if query.tag is not None and query.tag != selectors.LATEST:
        version = selectors.version_tagged(dataset, query.tag)
    else:
        when = selectors.resolve_version(dataset, query.as_of)
        version = selectors.version_at(dataset, when)
    return version or get_object_or_404(models.DatasetVersion.objects.none())


@router.get(
    "/datasets/{uuid:dataset_id}/versions/diff",
    response=VersionDiffOut,
    summary="Which examples one version added, changed and removed against another",
)
@requires("datasets:read")
def diff_versions(request, dataset_id: uuid.UUID, query: Query[VersionDiffQuery]):
    dataset = _dataset(request, dataset_id)
    before = selectors.resolve_version(dataset, query.from_version, "from_version")
    after = selectors.resolve_version(dataset, query.to_version, "to_version")
    return selectors.diff(dataset, before, after)


@router.put(
    "/datasets/{uuid:dataset_id}/tags",
    response=DatasetVersionOut,
    summary="Tag the version made at exactly as_of (the tag moves there)",
)
@requires("datasets:update")
def tag_version(request, dataset_id: uuid.UUID, payload: TagIn):
    return services.tag_version(
        actor=request.actor,
        dataset=_dataset(request, dataset_id),
        as_of=payload.as_of,
        tag=payload.tag,
    )


# Splits


class SplitsQuery(Schema):
    as_of: str | None = Field(None, max_length=255)


@router.get(
    "/datasets/{uuid:dataset_id}/splits",
    response=list[str],
    summary="The names of a dataset's splits (as of a version)",
)
@requires("datasets:read")
def list_splits(request, dataset_id: uuid.UUID, query: Query[SplitsQuery]):
    dataset = _dataset(request, dataset_id)
    return selectors.splits_as_of(dataset, selectors.resolve_version(dataset, query.as_of))


@router.put(
    "/datasets/{uuid:dataset_id}/splits",
    response=list[uuid.UUID],
    summary="Put examples into a split, or take them out",
)
@requires("datasets:update")
def update_splits(request, dataset_id: uuid.UUID, payload: SplitsIn):
    return services.change_split(
        actor=request.actor,
        dataset=_dataset(request, dataset_id),
        split_name=payload.split_name,
        example_ids=payload.examples,
        remove=payload.remove,
    )


# Bulk changes on /examples (on resources.api.router: the paths are its)


@resources_api.router.patch(
    "/examples/bulk", response=ExamplesChanged, summary="Change many examples at once"
)
@requires("datasets:update")
def update_examples(request, payload: list[ExampleBulkPatch]):
    for change in payload:
        if change.attachments_operations is not None:
            raise _invalid("attachments_operations", "Attachments are not supported.")
        if change.overwrite:
            raise _invalid("overwrite", "overwrite is not supported: give every field to set.")
    examples = services.update_examples(
        actor=request.actor,
        workspace=ws(request),
        updates=[c.dict(exclude={"attachments_operations", "overwrite"}) for c in payload],
    )
    return _changed(examples, "updated")


class ExampleIds(Schema):
    # Below Django's DATA_UPLOAD_MAX_NUMBER_FIELDS (1,000 query fields), so one id too many is
    # this API's 422, not Django's HTML 400.
    example_ids: list[uuid.UUID] = Field(min_length=1, max_length=999)


@resources_api.router.delete(
    "/examples", response=ExamplesChanged, summary="Delete examples (example_ids=...)"
)
@requires("datasets:update")
def delete_examples(request, query: Query[ExampleIds]):
    ids = list(dict.fromkeys(query.example_ids))
    services.delete_examples(actor=request.actor, workspace=ws(request), example_ids=ids)
    return {"message": f"{len(ids)} examples deleted", "count": len(ids), "example_ids": ids}


# LangSmith's platform endpoints: the multipart examples of a dataset, bulk metadata, hard delete


@platform_router.post(
    "/platform/datasets/{uuid:dataset_id}/examples",
    response={201: ExamplesChanged},
    summary="Create examples (multipart: <id>, <id>.inputs, <id>.outputs)",
)
@requires("datasets:update")
def create_examples_multipart(request, dataset_id: uuid.UUID):
    dataset = _dataset(request, dataset_id)
    examples = _multipart_examples(request, dataset, ExampleIn)
    created = services.create_examples(
        actor=request.actor, workspace=ws(request), examples=examples
    )
    return Status(201, _changed(created, "created", selectors.version_at(dataset, None)))


class MultipartPatch(ExamplePatch):
    id: uuid.UUID


@platform_router.patch(
    "/platform/datasets/{uuid:dataset_id}/examples",
    response=ExamplesChanged,
    summary="Change examples (multipart: <id>, <id>.inputs, <id>.outputs)",
)
@requires("datasets:update")
def update_examples_multipart(request, dataset_id: uuid.UUID):
    dataset = _dataset(request, dataset_id)
    updates = _multipart_examples(request, dataset, MultipartPatch)
    changed = services.update_examples(
        actor=request.actor, workspace=ws(request), updates=updates, dataset=dataset
    )
    return _changed(changed, "updated", selectors.version_at(dataset, None))


@platform_router.patch(
    "/platform/datasets/{uuid:dataset_id}/examples/metadata",
    response=MetadataPatched,
    summary="Change the metadata (and splits: dataset_split) of many examples",
)
@requires("datasets:update")
def update_examples_metadata(request, dataset_id: uuid.UUID, payload: MetadataPatch):
    statuses = services.change_example_metadata(
        actor=request.actor,
        dataset=_dataset(request, dataset_id),
        example_ids=payload.example_ids,
        operations=[operation.dict() for operation in payload.operations],
    )
    return {"statuses": statuses}


@platform_router.post(
    "/platform/datasets/examples/delete",
    response=ExamplesChanged,
    summary="Delete examples for good, with their history",
)
@requires("datasets:update")
def hard_delete_examples(request, payload: HardDeleteIn):
    if not payload.hard_delete:
        raise _invalid("hard_delete", "Use DELETE /examples?example_ids=... to keep history.")
    ids = list(dict.fromkeys(payload.example_ids))
    services.purge_examples(actor=request.actor, workspace=ws(request), example_ids=ids)
    return {"message": f"{len(ids)} examples deleted", "count": len(ids), "example_ids": ids}

"""Dataset curation with the real `langsmith` Python SDK against a live server (issue #18):
upload_csv, create/update/delete examples (through the multipart endpoints /info advertises),
splits, versions read as of a time or a tag, tags, metadata filters, and `evaluate` linking its
experiment to the dataset so list_projects(reference_dataset_id=...) finds it.

Assertions read back through the SDK and through the database.
"""

import datetime
import io

import langsmith
import pytest
from langsmith.utils import LangSmithError

from accesscontrol.resources.models import Dataset, DatasetVersion, Example, Project, Run
from tests.api.test_langsmith_sdk import API_V1, sdk  # noqa: F401  (the live-server fixture)
from tests.factories import service_key_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def by_q(examples):
    return {e.inputs["q"]: e for e in examples}


def test_a_dataset_curated_with_the_python_sdk(world, sdk):  # noqa: F811
    client = sdk(service_key_for(world.workspace, "Editor"), prefix=API_V1)
    assert client.info.instance_flags["dataset_examples_multipart_enabled"] is True

    # upload_csv: one example per row, the named columns as inputs and outputs.
    csv_file = io.BytesIO(b"q,a,ignored\nhours?,9-5,x\nrefunds?,30 days,y\n")
    dataset = client.upload_csv(
        ("faq.csv", csv_file), input_keys=["q"], output_keys=["a"], name="faq", description="d"
    )
    assert (dataset.name, dataset.description) == ("faq", "d")
    assert Dataset.objects.get(pk=dataset.id).workspace == world.workspace
    examples = by_q(client.list_examples(dataset_id=dataset.id))
    assert {q: e.outputs for q, e in examples.items()} == {
        "hours?": {"a": "9-5"},
        "refunds?": {"a": "30 days"},
    }
    with pytest.raises(LangSmithError, match="409"):  # the name is taken
        client.upload_csv(("faq.csv", io.BytesIO(b"q,a\nx,y\n")), ["q"], ["a"], name="faq")
    first_version = client.read_dataset_version(dataset_id=dataset.id, tag="latest")

    # create_examples goes through the multipart endpoint; metadata and splits are kept.
    created = client.create_examples(
        dataset_id=dataset.id,
        examples=[
            {"inputs": {"q": "phone?"}, "outputs": {"a": "555"}, "metadata": {"src": "kb"}},
            {"inputs": {"q": "email?"}, "outputs": {"a": "a@b"}, "split": "test"},
        ],
    )
    assert created["count"] == 2
    phone_id, email_id = created["example_ids"]
    assert Example.objects.get(pk=email_id).split == ["test"]
    single = client.create_example(dataset_id=dataset.id, inputs={"q": "fax?"}, outputs={"a": "-"})
    assert single.inputs == {"q": "fax?"}

    # Metadata filters: datasets (the SDK stores them in extra.metadata) and examples.
    client.create_dataset("other", metadata={"team": "billing"})
    assert [d.name for d in client.list_datasets(metadata={"team": "billing"})] == ["other"]
    assert [
        e.id.hex for e in client.list_examples(dataset_id=dataset.id, metadata={"src": "kb"})
    ] == [phone_id.replace("-", "")]

    # update_examples (multipart PATCH) and update_example.
    result = client.update_examples(
        dataset_id=dataset.id,
        updates=[
            {"id": phone_id, "outputs": {"a": "555-0100"}},
            {"id": email_id, "metadata": {"checked": True}},
        ],
    )
    assert result["count"] == 2
    client.update_example(single.id, outputs={"a": "none"})
    now = by_q(client.list_examples(dataset_id=dataset.id))
    assert now["phone?"].outputs == {"a": "555-0100"}
    assert now["email?"].metadata == {"checked": True}
    assert now["fax?"].outputs == {"a": "none"}

    # Splits: the SDK's update_dataset_splits uses LangSmith's bulk metadata endpoint.
    client.update_dataset_splits(
        dataset_id=dataset.id, split_name="train", example_ids=[phone_id, single.id]
    )
    assert client.list_dataset_splits(dataset_id=dataset.id) == ["base", "test", "train"]
    client.update_dataset_splits(
        dataset_id=dataset.id, split_name="base", example_ids=[phone_id], remove=True
    )
    train = by_q(client.list_examples(dataset_id=dataset.id, splits=["train"]))
    assert sorted(train) == ["fax?", "phone?"]
    assert Example.objects.get(pk=phone_id).split == ["train"]

    # delete_examples: gone from the latest version, still there as of an earlier one.
    client.delete_examples([email_id])
    assert sorted(by_q(client.list_examples(dataset_id=dataset.id))) == [
        "fax?",
        "hours?",
        "phone?",
        "refunds?",
    ]

    # Versions: every change made one; read as of a time and as of a tag; tag a version.
    versions = list(client.list_dataset_versions(dataset_id=dataset.id))
    assert len(versions) == DatasetVersion.objects.filter(dataset_id=dataset.id).count() == 8
    assert versions[-1].as_of == first_version.as_of
    client.update_dataset_tag(dataset_id=dataset.id, as_of=first_version.as_of, tag="v1")
    assert client.read_dataset_version(dataset_id=dataset.id, tag="v1").as_of == first_version.as_of
    assert sorted(by_q(client.list_examples(dataset_id=dataset.id, as_of="v1"))) == [
        "hours?",
        "refunds?",
    ]
    assert sorted(by_q(client.list_examples(dataset_id=dataset.id, as_of=first_version.as_of))) == [
        "hours?",
        "refunds?",
    ]
    later = first_version.as_of + datetime.timedelta(microseconds=500)
    assert (
        client.read_dataset_version(dataset_id=dataset.id, as_of=later).as_of == first_version.as_of
    )
    assert client.list_dataset_splits(dataset_id=dataset.id, as_of="v1") == ["base"]
    diff = client.diff_dataset_versions(dataset.id, from_version="v1", to_version="latest")
    assert {str(i) for i in diff.examples_added} == {phone_id, str(single.id)}
    assert diff.examples_removed == [] and diff.examples_modified == []
    with pytest.raises(LangSmithError, match="404"):
        client.update_dataset_tag(dataset_id=dataset.id, as_of=later, tag="nowhere")

    # Hard delete forgets the history too.
    client.delete_examples([single.id], hard_delete=True)
    assert not Example.objects.filter(pk=single.id).exists()
    assert "fax?" not in by_q(client.list_examples(dataset_id=dataset.id, as_of=versions[1].as_of))

    # A Viewer reads the history but changes nothing.
    viewer = sdk(service_key_for(world.workspace, "Viewer"), prefix=API_V1)
    assert len(list(viewer.list_dataset_versions(dataset_id=dataset.id))) == len(versions)
    with pytest.raises(LangSmithError, match="datasets:update"):
        viewer.delete_examples([phone_id])
    with pytest.raises(LangSmithError, match="datasets:create"):
        viewer.upload_csv(("x.csv", io.BytesIO(b"q\n1\n")), ["q"], [], name="nope")
    assert Example.objects.filter(pk=phone_id).exists()


def test_evaluate_links_its_experiment_to_the_dataset(world, sdk):  # noqa: F811
    client = sdk(service_key_for(world.workspace, "Editor"))  # the bare server URL
    dataset = client.create_dataset("arithmetic")
    client.create_examples(
        dataset_id=dataset.id,
        examples=[
            {"inputs": {"x": 1}, "outputs": {"y": 2}},
            {"inputs": {"x": 2}, "outputs": {"y": 4}},
            {"inputs": {"x": 3}, "outputs": {"y": 7}},
        ],
    )
    client.create_project("unrelated")

    def double(inputs):
        return {"y": inputs["x"] * 2}

    def exact(outputs, reference_outputs):
        return {"key": "exact", "score": outputs["y"] == reference_outputs["y"]}

    with langsmith.tracing_context(enabled=True):
        results = client.evaluate(
            double, data="arithmetic", evaluators=[exact], experiment_prefix="doubling"
        )
        results.wait()
    scores = sorted(r["evaluation_results"]["results"][0].score for r in results)
    assert scores == [False, True, True]
    client.flush()

    experiments = list(client.list_projects(reference_dataset_id=dataset.id))
    assert [p.name for p in experiments] == [results.experiment_name]
    experiment = experiments[0]
    assert experiment.reference_dataset_id == dataset.id
    # The evaluators' own traces go to the SDK's "evaluators" project, linked to no dataset.
    free = sorted(p.name for p in client.list_projects(reference_free=True))
    assert free == ["evaluators", "unrelated"]
    stored = Project.objects.get(pk=experiment.id)
    assert stored.reference_dataset_id == dataset.id and stored.workspace == world.workspace
    example_ids = set(Example.objects.filter(dataset_id=dataset.id).values_list("id", flat=True))
    roots = Run.objects.filter(project=stored, parent_run_id=None)
    assert {r.reference_example_id for r in roots} == example_ids
    assert stored.extra["metadata"]["dataset_version"]  # the SDK records the version it read

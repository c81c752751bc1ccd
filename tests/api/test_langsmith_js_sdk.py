"""The official JS SDK (npm `langsmith`) against a live server (issue #18).

A Node script (tests/api/js/evaluate_dataset.cjs) creates a dataset with examples (the JS SDK
writes examples only through the multipart endpoints GET /info advertises), fixes one, lists
them, runs `evaluate` with a trivial target and evaluator, and prints what it saw; this test
checks that against the database: the experiment is a project under the dataset, with one root
run per example and the evaluator's feedback.

The SDK is installed with npm into LANGSMITH_JS_DIR (default .cache/langsmith-js in the
checkout; .ci/run installs it there first). Skipped only when Node is not on the machine.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from accesscontrol.resources.models import Dataset, Example, Feedback, Project, Run
from tests.factories import service_key_for

pytestmark = pytest.mark.django_db(transaction=True)

JS_SDK_VERSION = "0.12.0"
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("js") / "evaluate_dataset.cjs"


def js_sdk_dir() -> Path:
    return Path(os.environ.get("LANGSMITH_JS_DIR", ROOT / ".cache" / "langsmith-js"))


def install_js_sdk() -> Path:
    """node_modules holding langsmith@JS_SDK_VERSION, installed with npm if not there yet."""
    folder = js_sdk_dir()
    manifest = folder / "node_modules" / "langsmith" / "package.json"
    if manifest.exists() and json.loads(manifest.read_text())["version"] == JS_SDK_VERSION:
        return folder / "node_modules"
    npm = shutil.which("npm")
    assert npm, "node is installed but npm is not: install npm to run the JS SDK test"
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(folder),
            "--no-audit",
            "--no-fund",
            f"langsmith@{JS_SDK_VERSION}",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return folder / "node_modules"


@pytest.fixture(scope="session")
def js_sdk():
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the JS SDK test needs `node` on the PATH")
    return node, install_js_sdk()


def test_the_js_sdk_builds_a_dataset_and_evaluates_on_it(world, live_server, js_sdk):
    node, node_modules = js_sdk
    env = {
        **os.environ,
        "NODE_PATH": str(node_modules),
        "LANGSMITH_ENDPOINT": live_server.url,  # the bare server URL, as most users set it
        "LANGSMITH_API_KEY": service_key_for(world.workspace, "Editor"),
        "LANGSMITH_TRACING": "true",
    }
    done = subprocess.run([node, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    # The dataset and its examples, written through the multipart endpoints, in this workspace.
    dataset = Dataset.objects.get(pk=seen["datasetId"])
    assert dataset.workspace == world.workspace
    assert dataset.description == "made by the JS SDK"
    stored = {e.inputs["x"]: e for e in Example.objects.filter(dataset=dataset)}
    assert {x: e.outputs for x, e in stored.items()} == {1: {"y": 2}, 2: {"y": 4}, 3: {"y": 6}}
    assert stored[1].metadata == {"n": 1}
    assert stored[2].split == ["test"]
    assert sorted(seen["created"]) == sorted(str(e.pk) for e in stored.values())
    assert sorted((e["inputs"]["x"], e["outputs"]["y"]) for e in seen["listed"]) == [
        (1, 2),
        (2, 4),
        (3, 6),
    ]
    assert seen["testSplit"] == [str(stored[2].pk)]
    assert dataset.versions.count() == 2  # the creation, then the fix

    # The experiment: a project linked to the dataset, listed under it, with its runs.
    assert seen["scores"] == [1, 1, 1]
    experiment = Project.objects.get(name=seen["experimentName"])
    assert experiment.workspace == world.workspace
    assert experiment.reference_dataset_id == dataset.pk
    assert seen["experiments"] == [{"id": str(experiment.pk), "name": experiment.name}]
    roots = Run.objects.filter(project=experiment, parent_run_id=None)
    assert sorted(r.reference_example_id for r in roots) == sorted(e.pk for e in stored.values())
    assert sorted(r.outputs["y"] for r in roots) == [2, 4, 6]
    feedback = Feedback.objects.filter(run_id__in=[r.pk for r in roots], key="exact")
    assert sorted(f.score for f in feedback) == [1.0, 1.0, 1.0]

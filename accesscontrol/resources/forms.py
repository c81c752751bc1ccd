"""The console's forms for a workspace's resources. They parse and check input; the services
(resources/services.py) decide and write."""

import json

from django import forms
from django.core.exceptions import ValidationError

from accesscontrol import storable
from accesscontrol.resources.models import AnnotationQueue, Dataset
from accesscontrol.resources.templatetags.resource_display import pretty_json

JSON_MAX_CHARS = 1_000_000
CODE = {"class": "code-input", "spellcheck": "false"}


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON (use null or a number)")


class JSONObjectField(forms.CharField):
    """A textarea that must hold a JSON object; the cleaned value is the dict."""

    widget = forms.Textarea(attrs={"rows": 6, **CODE})

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", JSON_MAX_CHARS)
        super().__init__(**kwargs)

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return None
        try:
            parsed = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise ValidationError("This JSON is nested too deeply.", code="json") from None
        except ValueError as exc:
            raise ValidationError(f"This is not valid JSON: {exc}", code="json") from None
        if storable.json_too_deep(parsed):
            raise ValidationError(
                f"JSON may nest arrays and objects at most {storable.MAX_JSON_DEPTH} deep.",
                code="json",
            )
        if not isinstance(parsed, dict):
            raise ValidationError(
                'Enter a JSON object, e.g. {"question": "…"}.', code="json_object"
            )
        problem = storable.json_unstorable(parsed)
        if problem:
            raise ValidationError(problem, code="json")
        return parsed

    def prepare_value(self, value):
        if isinstance(value, dict):
            return pretty_json(value)
        return value


def _text(label, max_length, rows, attrs=None, **kwargs):
    """A textarea of `rows` lines."""
    widget = forms.Textarea(attrs={"rows": rows, **(attrs or {})})
    return forms.CharField(label=label, max_length=max_length, widget=widget, **kwargs)


class NamedForm(forms.Form):
    """A project, a dataset or a prompt: its name and description."""

    name = forms.CharField(label="Name", max_length=255)
    description = _text("Description", 10000, 3, required=False)


class NewDatasetForm(NamedForm):
    data_type = forms.ChoiceField(label="Type", choices=Dataset.DATA_TYPES, initial="kv")


class NewPromptForm(NamedForm):
    template = _text(
        "Template",
        200000,
        8,
        attrs=CODE,
        help_text="Variables in braces, e.g. “Answer {question} briefly.”",
    )


class CommitForm(forms.Form):
    template = _text("Template", 200000, 10, attrs=CODE)
    message = forms.CharField(
        label="What changed", required=False, max_length=255, help_text="Optional."
    )


class ExampleForm(forms.Form):
    inputs = JSONObjectField(label="Inputs (JSON object)")
    outputs = JSONObjectField(label="Outputs (JSON object)", required=False)
    metadata = JSONObjectField(label="Metadata (JSON object)", required=False)
    split = forms.CharField(
        label="Splits",
        required=False,
        max_length=1000,
        initial="base",
        help_text="Comma-separated, e.g. “base, test”.",
    )

    @classmethod
    def initial_for(cls, example) -> dict:
        return {
            "inputs": example.inputs,
            "outputs": example.outputs,
            "metadata": example.metadata,
            "split": ", ".join(example.split or []),
        }

    def clean_split(self):
        names = [s.strip() for s in self.cleaned_data["split"].split(",") if s.strip()]
        return names or ["base"]


class FeedbackForm(forms.Form):
    key = forms.CharField(
        label="Key", max_length=255, help_text="What is judged, e.g. “correctness”."
    )
    score = forms.FloatField(label="Score", required=False, help_text="A number, e.g. 0 or 1.")
    comment = _text("Comment", 10000, 3, required=False)


class QueueRunForm(forms.Form):
    queue = forms.ModelChoiceField(
        label="Annotation queue",
        queryset=AnnotationQueue.objects.none(),
        empty_label="Choose a queue…",
    )

    def __init__(self, workspace, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["queue"].queryset = AnnotationQueue.objects.in_workspace(workspace).order_by(
            "name", "id"
        )


class QueueForm(NamedForm):
    rubric_instructions = _text("Instructions for reviewers", 10000, 4, required=False)
    rubric_items = _text(
        "Feedback to give",
        10000,
        3,
        required=False,
        attrs={"class": "code-input"},
        help_text="One feedback key per line, optionally “key: what it means”.",
    )

    @classmethod
    def initial_for(cls, queue) -> dict:
        fields = ("name", "description", "rubric_instructions")
        return {f: getattr(queue, f) for f in fields} | {
            "rubric_items": rubric_lines(queue.rubric_items)
        }

    def clean_rubric_items(self):
        items = []
        for line in self.cleaned_data["rubric_items"].splitlines():
            key, _, description = line.partition(":")
            if key.strip():
                items.append(
                    {"feedback_key": key.strip()[:255], "description": description.strip()}
                )
        return items


def rubric_lines(items) -> str:
    lines = []
    for item in items or ():
        if isinstance(item, dict) and item.get("feedback_key"):
            description = item.get("description") or ""
            lines.append(
                f"{item['feedback_key']}: {description}" if description else item["feedback_key"]
            )
    return "\n".join(lines)

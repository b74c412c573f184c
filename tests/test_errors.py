"""One error policy (issue #21): each error class carries its HTTP status and exit code, each
error the field it names; the API renders every error in one function, from those
attributes (never from the message); a message that names an option is written once and
put in each front end's words (the command line, the tab, the API)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from lycoris_eval import errors
from lycoris_eval.api.answers import http_error
from lycoris_eval.cli.main import main
from lycoris_eval.errors import (
    DISTRACTORS_NEED_REFERENCE,
    METRICS_NEED_REFERENCE,
    InputError,
    LycorisEvalError,
    MissingWeightsError,
    NotFoundError,
    SpecError,
    exit_code,
    http_status,
)
from lycoris_eval.tab.ui import build_ui
from tests.api.test_api import PREFIX, api  # noqa: F401 - the fixture
from tests.helpers import make_grid, make_set
from tests.tab.test_ui import press_evaluate, services_for

ROOT = Path(__file__).resolve().parents[1]


def _error_classes() -> list[type[LycorisEvalError]]:
    found, todo = [], [LycorisEvalError]
    while todo:
        cls = todo.pop()
        if cls.__module__ == errors.__name__:
            found.append(cls)
        todo += cls.__subclasses__()
    return found


def test_every_error_class_carries_its_status_and_exit_code():
    classes = _error_classes()
    assert {"InputError", "SpecError", "NotFoundError", "PathRefused", "Unauthorized", "BusyError"} <= {
        c.__name__ for c in classes
    }
    for cls in classes:
        assert type(cls.status) is int and 400 <= cls.status <= 599, cls
        assert type(cls.exit_code) is int and cls.exit_code not in (0, 1), cls  # 1 is a bug's
    assert (NotFoundError.status, errors.Unauthorized.status, errors.PathRefused.status) == (404, 401, 403)


def test_the_policy_reads_the_class_attributes():
    class Teapot(InputError):  # a class of this test only: the functions read, they do not list
        status, exit_code = 418, 7

    assert http_status(Teapot("x")) == 418 and exit_code(Teapot("x")) == 7
    assert http_status(KeyError("a bug")) == 500 and exit_code(KeyError("a bug")) == 1


def test_every_error_has_a_field_and_keeps_it_through_pickle():
    assert LycorisEvalError("x").field is None and InputError("x").field is None
    named = InputError("give exactly one of run_id, folder, images", field="run_id")
    assert named.field == "run_id" and str(named) == "give exactly one of run_id, folder, images"
    spec = SpecError("base.steps", "-1 is outside 1..150")
    assert spec.field == "base.steps" and str(spec) == "base.steps: -1 is outside 1..150"
    # a sweep's Ray workers pickle errors: whatever their __init__ takes, they come back whole
    for exc in (
        spec,
        named,
        MissingWeightsError(["vgg: not found"]),
        SpecError("distractors", DISTRACTORS_NEED_REFERENCE),
    ):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc) and back.field == exc.field
        assert back.words("tab") == exc.words("tab")


def test_a_message_naming_an_option_is_worded_once_per_front_end():
    cli, tab, webui, api_ = (DISTRACTORS_NEED_REFERENCE.words(f) for f in ("cli", "tab", "webui", "api"))
    assert cli == "distractor sets need a target reference set (--reference)"
    assert tab == webui == "distractor sets need a target reference set (target reference folder)"
    assert api_ == "distractor sets need a target reference set (references)"
    assert METRICS_NEED_REFERENCE.words("cli").endswith("; pass --reference DIR")
    assert METRICS_NEED_REFERENCE.words("tab").endswith("; fill in the target reference folder")
    # values are the user's data, never read as a template
    assert errors.Message("{x} ({reference})", {"x": "{reference}"}).words("api") == "{reference} (references)"
    with pytest.raises(ValueError, match="unknown front end"):
        DISTRACTORS_NEED_REFERENCE.words("gui")
    # worded in one place: no other module of the package writes these sentences
    sentences = (
        "need a target reference set",
        "needs a reference set;",
        "were randomly initialised",
        "dry run without",
    )
    for path in (ROOT / "lycoris_eval").rglob("*.py"):
        if path.name != "errors.py":
            text = path.read_text(encoding="utf-8")
            assert not [s for s in sentences if s in text], path


def test_missing_weights_name_the_dry_run_switch_of_each_front_end():
    exc = MissingWeightsError(["dinov2: pretrained weights not found", "openclip: pretrained weights not found"])
    assert str(exc).splitlines()[0] == "dinov2: pretrained weights not found"
    assert str(exc).endswith("For a dry run without real weights use --random-weights; its numbers mean nothing.")
    assert "turn on Settings → LyCORIS Eval → Dry run: random scoring weights;" in exc.words("webui")
    assert "--random-weights" not in exc.words("webui") and "--random-weights" in exc.words("tab")


def test_the_api_renders_the_field_from_the_attribute_not_the_message():
    detail = http_error(InputError("something about it", field="trigger"), "query").detail
    assert detail == [{"loc": ["query", "trigger"], "msg": "something about it", "type": "value_error"}]
    # an option's field by the API's name for it: config's "reference" is the body's "references"
    assert http_error(InputError("x", field="reference")).detail[0]["loc"] == ["body", "references"]
    # a message that looks like "field: ..." names no field unless the error does
    assert http_error(InputError("a: looks like a field")).detail[0]["loc"] == ["body"]
    # other statuses: a plain message; 401 asks for credentials
    assert http_error(NotFoundError("unknown run 'x'")).detail == "unknown run 'x'"
    assert http_error(errors.Unauthorized("no")).headers == {"WWW-Authenticate": "Basic"}
    assert http_error(KeyError("bug"), message="KeyError: 'bug'").status_code == 500


def test_unknown_run_and_job_answer_404_in_the_api_shape(api):  # noqa: F811
    c = api.client
    for method, path, message in [
        ("get", "/runs/nope", "unknown run 'nope'"),
        ("get", "/runs/nope/report", "unknown run 'nope'"),
        ("get", "/jobs/nope", "unknown job 'nope'"),
        ("post", "/jobs/nope/cancel", "unknown job 'nope'"),
    ]:
        response = getattr(c, method)(PREFIX + path)
        assert response.status_code == 404 and response.json() == {"detail": message}, path
    response = c.post(f"{PREFIX}/evaluate", json={"run_id": "nope"})
    assert response.status_code == 404 and response.json() == {"detail": "unknown run 'nope'"}


def test_a_body_error_names_its_field_from_the_exception(api):  # noqa: F811
    c = api.client
    # the pipeline refuses: every metric needs a reference; its error names the option
    # "reference" (field="reference"), and the message does not start with it
    response = c.post(f"{PREFIX}/evaluate", json={"folder": "outputs/refs", "metrics": ["style_loss_ref"]})
    assert response.status_code == 422, response.text
    assert response.json() == {
        "detail": [{"loc": ["body", "references"], "msg": METRICS_NEED_REFERENCE.words("api"), "type": "value_error"}]
    }
    assert not response.json()["detail"][0]["msg"].startswith("references")
    # a request's own field, in the API's words
    response = c.post(f"{PREFIX}/evaluate", json={"folder": "outputs/refs", "distractors": ["outputs/refs"]})
    (detail,) = response.json()["detail"]
    assert response.status_code == 422 and detail["loc"] == ["body", "distractors"]
    assert detail["msg"] == f"distractors: {DISTRACTORS_NEED_REFERENCE.words('api')}"


def test_the_cli_and_the_tab_word_the_reference_messages_from_one_definition(tmp_path, capsys):
    make_grid(tmp_path / "grid")
    make_set(tmp_path / "doodle", 2, 900)
    argv = ["evaluate", str(tmp_path / "grid"), "--distractor", str(tmp_path / "doodle"), "--random-weights"]
    assert main([*argv, "--quiet"]) == 2
    cli = capsys.readouterr().err
    assert cli.strip() == f"lycoris-eval: error: distractors: {DISTRACTORS_NEED_REFERENCE.words('cli')}"
    assert "(--reference)" in cli

    blocks = build_ui(services_for(tmp_path))
    tab = press_evaluate(blocks, ["vendi"], distractors="doodle")[0]
    assert tab == f"**Error:** distractors: {DISTRACTORS_NEED_REFERENCE.words('tab')}"
    assert "(target reference folder)" in tab and "--reference" not in tab
    tab = press_evaluate(blocks, ["style_loss_ref"])[0]
    assert tab == f"**Error:** {METRICS_NEED_REFERENCE.words('tab')}"
    assert tab.endswith("; fill in the target reference folder") and "--reference" not in tab


def test_nothing_decides_on_an_error_message():
    """A field, a status or a wording comes from the error's class and attributes: no code
    reads them back out of the message (``str(exc).split(":")``, ``"x" in str(exc)``)."""
    reading = re.compile(
        r"str\((exc|err|error|e)\)\s*(\.(split|partition|startswith|endswith|find|index)\(|\[)|in str\((exc|err|error|e)\)"
    )
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "lycoris_eval").rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if reading.search(line)
    ]
    assert found == []
    assert reading.search('field = str(exc).split(":", 1)[0] if str(exc)[:2] in ("a:", "b:") else None')

"""Every request the engine takes ends in exactly one RequestDone, whichever step refuses it, and in TF Serving's order."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from tfserve_lab.config import ModelConfig
from tfserve_lab.core.engine import Engine, EngineOptions
from tfserve_lab.core.events import EngineEvent, RequestDone
from tfserve_lab.core.requests import ArrayInputs, ExampleList
from tfserve_lab.core.servables.callable import CallableServable, tensor_info
from tfserve_lab.core.types import ModelSpec, RequestContext, SignatureInfo
from tfserve_lab.core.watcher import WatcherOptions
from tfserve_lab.errors import ErrorCode, InvalidArgument, TfServeError

PREDICT = "tensorflow/serving/predict"
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
EXAMPLES = tensor_info("tf_example:0", "DT_STRING", (-1,))


def _scores(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"scores": np.full((len(inputs["inputs"]), 2), 0.5, np.float32)}


def _values(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"outputs": np.full((len(inputs["inputs"]), 1), 3.0, np.float32)}


def _plus_one(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"y": inputs["x"] + 1}


SIGNATURES = {
    "serving_default": (SignatureInfo(PREDICT, {"x": tensor_info("x:0")}, {"y": tensor_info("y:0")}), _plus_one),
    "c": (SignatureInfo(CLASSIFY, {"inputs": EXAMPLES}, {"scores": tensor_info("s:0")}), _scores),
    "r": (SignatureInfo(REGRESS, {"inputs": EXAMPLES}, {"outputs": tensor_info("o:0")}), _values),
}


class RefusingBody:
    """A decode step that refuses the request, as a bad wire body would."""

    def signature_name(self) -> str:
        return ""

    def inputs(self, key: str, signature: SignatureInfo | None) -> Mapping[str, np.ndarray]:
        raise InvalidArgument("bad body")


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    (tmp_path / "m" / "7").mkdir(parents=True)
    servable = CallableServable(SIGNATURES)
    engine = Engine(lambda path: servable, EngineOptions(watcher=WatcherOptions(poll_wait_seconds=0)))
    engine.load([ModelConfig("m", str(tmp_path / "m"))])
    yield engine
    engine.stop()


def done_events(engine: Engine, call: object) -> tuple[list[RequestDone], object]:
    """The RequestDone events of one engine call, and its result or the TfServeError it raised."""
    events: list[EngineEvent] = []
    engine.add_observer(events.append)
    try:
        outcome: object = asyncio.run(call)  # type: ignore[arg-type]
    except TfServeError as exc:
        outcome = exc
    finally:
        engine.remove_observer(events.append)
    return [e for e in events if isinstance(e, RequestDone)], outcome


def test_a_served_predict_is_counted_once_with_its_version_rows_and_protocol(engine: Engine) -> None:
    context = RequestContext("rest", 1.0)
    x = np.zeros((3, 1), np.float32)
    events, result = done_events(engine, engine.predict(ModelSpec("m"), ArrayInputs({"x": x}), context=context))
    assert [(e.model, e.version, e.signature, e.method, e.protocol, e.code, e.examples) for e in events] == [
        ("m", 7, "serving_default", "predict", "rest", ErrorCode.OK, 3)
    ]
    assert events[0].runtime_s > 0
    assert result.outputs["y"].tolist() == [[1.0]] * 3  # type: ignore[attr-defined]
    assert events[0].latency_s > events[0].runtime_s  # measured from the context's start


@pytest.mark.parametrize(
    ("spec", "body", "version", "code", "message"),
    [
        (ModelSpec(""), ArrayInputs({}), None, ErrorCode.INVALID_ARGUMENT, "ModelSpec has no name specified."),
        (
            ModelSpec("nope"),
            ArrayInputs({}),
            None,
            ErrorCode.NOT_FOUND,
            "Servable not found for request: Latest(nope)",
        ),
        (ModelSpec("m"), RefusingBody(), 7, ErrorCode.INVALID_ARGUMENT, "bad body"),
        (
            ModelSpec("m"),
            ArrayInputs({}, "other"),
            7,
            ErrorCode.FAILED_PRECONDITION,
            'Serving signature key "other" not found.',
        ),
    ],
)
def test_a_refused_predict_is_counted_once_at_the_step_that_refused_it(
    engine: Engine, spec: ModelSpec, body: object, version: int | None, code: ErrorCode, message: str
) -> None:
    events, error = done_events(engine, engine.predict(spec, body))  # type: ignore[arg-type]
    assert isinstance(error, TfServeError)
    assert (error.code, error.message) == (code, message)
    # Before the lease the spec names the servable; after it, the version that was leased.
    assert [(e.model, e.version, e.code) for e in events] == [(spec.name, version, code)]


def test_the_spec_names_the_signature_when_the_body_does_not(engine: Engine) -> None:
    events, error = done_events(engine, engine.predict(ModelSpec("m", signature_name="other"), ArrayInputs({})))
    assert isinstance(error, TfServeError)
    assert error.message == 'Serving signature key "other" not found.'
    assert [e.signature for e in events] == ["other"]


def test_examples_are_read_after_the_signature_checks_as_classifier_cc_does(engine: Engine) -> None:
    unknown, error = done_events(engine, engine.classify(ModelSpec("nope"), ExampleList([], "c")))
    assert isinstance(error, TfServeError)
    assert error.code is ErrorCode.NOT_FOUND
    wrong, error = done_events(engine, engine.classify(ModelSpec("m"), ExampleList([], "missing")))
    assert isinstance(error, TfServeError)
    assert error.message == "No signature was found with the name: missing"
    empty, error = done_events(engine, engine.regress(ModelSpec("m"), ExampleList([], "r")))
    assert isinstance(error, TfServeError)
    assert error.message == "Input is empty."
    assert [len(unknown), len(wrong), len(empty)] == [1, 1, 1]


def test_multi_inference_is_one_request_with_every_task_answered(engine: Engine) -> None:
    tasks = [("m", "c", CLASSIFY), ("m", "r", REGRESS)]
    call = engine.multi_inference(ModelSpec("m"), tasks, ExampleList([b"", b""], "c"))
    events, results = done_events(engine, call)
    assert [(e.method, e.signature, e.code, e.examples) for e in events] == [("multi_inference", "c", ErrorCode.OK, 2)]
    assert isinstance(results, list)
    assert [r.signature_name for r in results] == ["c", "r"]
    assert results[1].values.tolist() == [3.0, 3.0]

    duplicate = engine.multi_inference(ModelSpec("m"), [tasks[0], tasks[0]], ExampleList([b""], "c"))
    events, error = done_events(engine, duplicate)
    assert isinstance(error, TfServeError)
    assert error.message == "Duplicate evaluation of signature: c"
    assert [(e.method, e.version, e.code) for e in events] == [("multi_inference", None, ErrorCode.INVALID_ARGUMENT)]


def test_an_expired_request_is_counted_once_as_deadline_exceeded(engine: Engine) -> None:
    events: list[EngineEvent] = []
    engine.add_observer(events.append)
    engine.count_expired(ModelSpec("m"), "predict", RequestContext("rest", 1.0))
    assert [(e.model, e.method, e.code) for e in events if isinstance(e, RequestDone)] == [
        ("m", "predict", ErrorCode.DEADLINE_EXCEEDED)
    ]

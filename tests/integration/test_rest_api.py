"""TF Serving's REST API against a real ``tfserve-lab serve`` process and TF Serving's own models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.integration.server_process import ServerProcess


def post(server: ServerProcess, path: str, body: object, **kwargs: object) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(f"{server.url}{path}", data=data, timeout=30, **kwargs)


def get(server: ServerProcess, path: str) -> requests.Response:
    return requests.get(f"{server.url}{path}", timeout=30)


def test_model_status(server: ServerProcess) -> None:
    response = get(server, "/v1/models/half_plus_two")
    assert response.status_code == 200
    assert response.json() == {
        "model_version_status": [
            {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    both = get(server, "/v1/models/two").json()["model_version_status"]
    assert [s["version"] for s in both] == ["124", "123"]
    assert get(server, "/v1/models/two/versions/123").json()["model_version_status"][0]["version"] == "123"
    # TF Serving ignores a label in the status URL and lists every version.
    assert len(get(server, "/v1/models/two/labels/canary").json()["model_version_status"]) == 2


def test_metadata_equals_tf_serving(server: ServerProcess, testdata: Path) -> None:
    expected = json.loads((testdata / "half_plus_two_model_metadata.json").read_text())
    expected["model_spec"]["name"] = "half_plus_two"
    response = get(server, "/v1/models/half_plus_two/metadata")
    assert response.status_code == 200
    assert response.json() == expected
    assert get(server, "/v1/models/half_plus_two/versions/123/metadata").json() == expected


def test_metadata_of_versions_and_tf2_model(server: ServerProcess, testdata: Path) -> None:
    expected = json.loads((testdata / "saved_model_half_plus_two_2_versions_metadata.json").read_text())
    expected["model_spec"]["name"] = "two"
    assert get(server, "/v1/models/two/labels/stable/metadata").json() == expected
    tf2 = get(server, "/v1/models/tf2/metadata").json()
    signatures = tf2["metadata"]["signature_def"]["signature_def"]
    assert signatures["serving_default"]["inputs"]["x"]["name"] == "serving_default_x:0"
    assert "__saved_model_init_op" in signatures


def test_predict_row_and_columnar(server: ServerProcess) -> None:
    row = post(server, "/v1/models/half_plus_two:predict", {"instances": [1.0, 2.0, 5.0]})
    assert row.status_code == 200, row.text
    assert row.json() == {"predictions": [2.5, 3.0, 4.5]}
    columnar = post(server, "/v1/models/half_plus_two:predict", {"inputs": [1.0, 2.0, 5.0]})
    assert columnar.json() == {"outputs": [2.5, 3.0, 4.5]}
    named = post(server, "/v1/models/half_plus_two:predict", {"inputs": {"x": [[1.0], [2.0]]}})
    assert named.json() == {"outputs": [[2.5], [3.0]]}
    objects = post(server, "/v1/models/half_plus_two:predict", {"instances": [{"x": [1.0]}, {"x": [3.0]}]})
    assert objects.json() == {"predictions": [[2.5], [3.5]]}


def test_wide_bodies_take_the_numeric_reader_and_keep_tf_serving_errors(server: ServerProcess) -> None:
    values = [i / 8 for i in range(400)]  # wide enough for the numeric reader
    wide = post(server, "/v1/models/half_plus_two:predict", {"instances": values})
    assert wide.status_code == 200, wide.text
    assert wide.json() == {"predictions": [v / 2 + 2 for v in values]}
    named = post(server, "/v1/models/half_plus_two:predict", {"inputs": {"x": [[v] for v in values]}})
    assert named.json() == {"outputs": [[v / 2 + 2] for v in values]}
    ragged = post(server, "/v1/models/half_plus_two:predict", {"instances": [values, [1.0]]})
    assert ragged.status_code == 400
    assert ragged.json()["error"] == "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: " + (
        "Expecting tensor size: 400 but got: 1"
    )
    unknown = post(server, "/v1/models/half_plus_two:predict", {"signature_name": "nope", "instances": values})
    assert unknown.json() == {"error": 'Serving signature name: "nope" not found in signature def'}


def test_predict_every_model_and_version(server: ServerProcess) -> None:
    body = {"instances": [1.0, 2.0, 5.0]}
    assert post(server, "/v1/models/tf2:predict", body).json() == {"predictions": [2.5, 3.0, 4.5]}
    assert post(server, "/v1/models/half_plus_three:predict", body).json() == {"predictions": [3.5, 4.0, 5.5]}
    assert post(server, "/v1/models/with_config:predict", body).json() == {"predictions": [2.5, 3.0, 4.5]}
    v123 = post(server, "/v1/models/two/versions/123:predict", body).json()
    v124 = post(server, "/v1/models/two/versions/124:predict", body).json()
    assert v123 == {"predictions": [2.5, 3.0, 4.5]}
    assert v124 == {"predictions": [2.5, 3.0, 4.5]}
    assert post(server, "/v1/models/two/labels/canary:predict", body).status_code == 200
    matrix = post(server, "/v1/models/matrix:predict", {"instances": [[1.0, 2.0], [3.0, 4.0]]})
    assert matrix.status_code == 200, matrix.text
    assert matrix.json() == {"predictions": [[2.5, 3.0], [3.5, 4.0]]}


def test_predict_signature_name_and_multiple_outputs(server: ServerProcess) -> None:
    body = {"signature_name": "regress_x2_to_y3", "instances": [[1.0], [2.0]]}
    response = post(server, "/v1/models/half_plus_two:predict", body)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [[3.5], [4.0]]}


def test_stateful_counter_model(server: ServerProcess) -> None:
    # TF Serving's REST API cannot call a signature without inputs; incr_counter_by has one.
    reset = post(server, "/v1/models/counter:predict", {"signature_name": "reset_counter", "inputs": {}})
    assert reset.status_code == 400
    assert reset.json() == {"error": "Failed to get input map for signature: reset_counter"}
    first = post(server, "/v1/models/counter:predict", {"signature_name": "incr_counter_by", "inputs": {"delta": 3.0}})
    assert first.status_code == 200, first.text
    second = post(server, "/v1/models/counter:predict", {"signature_name": "incr_counter_by", "inputs": {"delta": 2.0}})
    assert second.status_code == 200, second.text
    assert second.json()["outputs"] == first.json()["outputs"] + 2.0


def test_classify_and_regress(server: ServerProcess) -> None:
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 1.0}, {"x": 2.0}]}
    classify = post(server, "/v1/models/half_plus_two:classify", body)
    assert classify.status_code == 200, classify.text
    assert classify.json() == {"results": [[["", 2.5]], [["", 3.0]]]}
    regress = post(
        server,
        "/v1/models/half_plus_two:regress",
        {"signature_name": "regress_x_to_y", "examples": [{"x": 1.0}, {"x": 2.0}]},
    )
    assert regress.json() == {"results": [2.5, 3.0]}
    ctx = {"signature_name": "regress_x_to_y", "context": {"x": 4.0}, "examples": [{}, {}]}
    assert post(server, "/v1/models/half_plus_two:regress", ctx).json() == {"results": [4.0, 4.0]}
    three = post(
        server,
        "/v1/models/half_plus_three:regress",
        {"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}]},
    )
    assert three.status_code == 200, three.text
    assert three.json() == {"results": [3.5]}


def test_urllib_content_type_and_case_insensitive_verbs(server: ServerProcess) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response = post(server, "/v1/models/half_plus_two:PREDICT", {"instances": [1.0]}, headers=form)
    assert response.json() == {"predictions": [2.5]}


def _float_column_entry(field: str, alias: str) -> str:
    """One entry of a SignatureDef's inputs or outputs, a [-1, 1] float tensor, as DebugString() prints it."""
    return (
        f'{field} {{\n  key: "{alias}"\n  value {{\n    name: "{alias}:0"\n    dtype: DT_FLOAT\n'
        "    tensor_shape {\n      dim {\n        size: -1\n      }\n      dim {\n        size: 1\n      }\n    }\n"
        "  }\n}\n"
    )


# half_plus_two's serving_default as SignatureDef::DebugString() prints it; TF Serving's classifier quotes it.
HALF_PLUS_TWO_PREDICT_SIGNATURE = (
    _float_column_entry("inputs", "x")
    + _float_column_entry("outputs", "y")
    + 'method_name: "tensorflow/serving/predict"\n'
)


# Each message is TF Serving's, word for word: http_rest_api_handler.cc (routing, labels, signature lookup),
# util/json_tensor.cc (JSON decoding), get_model_status_impl.cc, servables/tensorflow/classifier.cc.
@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/v1/models/nope:predict", {"instances": [1.0]}, 404, "Servable not found for request: Latest(nope)"),
        (
            "POST",
            "/v1/models/two/versions/7:predict",
            {"instances": [1.0]},
            404,
            "Servable not found for request: Specific(two, 7)",
        ),
        ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
        ("GET", "/v1/models/nope/metadata", None, 404, "Servable not found for request: Latest(nope)"),
        (
            "POST",
            "/v1/models/half_plus_two:predict",
            "{not json",
            400,
            "JSON Parse error: Missing a name for object member. at offset: 1",
        ),
        (
            "POST",
            "/v1/models/half_plus_two:predict",
            {"signature_name": "nope", "instances": [1.0]},
            400,
            'Serving signature name: "nope" not found in signature def',
        ),
        (
            "POST",
            "/v1/models/half_plus_two:predict",
            {"instances": ["a"]},
            400,
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
            'JSON Value: "a" Type: String is not of expected type: float',
        ),
        (
            "POST",
            "/v1/models/half_plus_two:predict",
            {"instances": [[1.0], [1.0, 2.0]]},
            400,
            "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
            "Expecting tensor size: 1 but got: 2",
        ),
        ("POST", "/v1/models/half_plus_two:predict", {"foo": [1.0]}, 400, "Missing 'inputs' or 'instances' key"),
        (
            "POST",
            "/v1/models/half_plus_two:predict",
            {"instances": [1.0], "inputs": [1.0]},
            400,
            # rapidjson's PrettyWriter (4-space indent) writes the whole request back.
            'JSON Value: {\n    "instances": [\n        1.0\n    ],\n    "inputs": [\n        1.0\n    ]\n}'
            " Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ",
        ),
        (
            "POST",
            "/v1/models/half_plus_two:frobnicate",
            {"instances": [1.0]},
            400,
            "Malformed request: POST /v1/models/half_plus_two:frobnicate",
        ),
        (
            "GET",
            "/v1/models/half_plus_two:predict",
            None,
            400,
            "Malformed request: GET /v1/models/half_plus_two:predict",
        ),
        (
            "POST",
            "/v1/models/two/labels/gold:predict",
            {"instances": [1.0]},
            400,
            "Unrecognized servable version label: gold",
        ),
        (
            "POST",
            "/v1/models/half_plus_two:classify",
            {"examples": [{"x": 1.0}]},
            400,
            "No classification inputs found in SignatureDef: " + HALF_PLUS_TWO_PREDICT_SIGNATURE,
        ),
    ],
)
def test_errors_have_tf_serving_shape(
    server: ServerProcess, method: str, path: str, body: object, status: int, message: str
) -> None:
    response = get(server, path) if method == "GET" else post(server, path, body)
    assert response.status_code == status, response.text
    assert response.json() == {"error": message}
    # The server keeps serving after every error.
    assert post(server, "/v1/models/half_plus_two:predict", {"instances": [1.0]}).json() == {"predictions": [2.5]}

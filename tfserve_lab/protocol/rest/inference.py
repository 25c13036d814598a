"""``POST /v1/models/NAME[/versions/N|/labels/L]:predict|classify|regress``, without HTTP objects.

The URL is parsed first (a malformed one is answered without touching the
engine); then the JSON body is decoded, the engine called and the answer
encoded, as TF Serving's http_rest_api_handler does it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from tfserve_lab.core.engine import Engine
from tfserve_lab.core.types import ModelSpec, RequestContext, SignatureInfo
from tfserve_lab.errors import InvalidArgument
from tfserve_lab.protocol.rest import codec

__all__ = ["MODEL_PREFIX", "InferenceCall", "answer", "parse_inference_url", "url_version"]

MODEL_PREFIX = "/v1/models/"

# TF Serving's URL shape (http_rest_api_handler.cc), matched case-insensitively.
_INFERENCE_URL = re.compile(r"(?i)([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)")


class InferenceCall:
    """What an inference URL asks for: the servable and the verb (lower case)."""

    __slots__ = ("spec", "verb")

    def __init__(self, spec: ModelSpec, verb: str) -> None:
        self.spec = spec
        self.verb = verb


def parse_inference_url(path: str) -> InferenceCall | None:
    """The call a path after ``/v1/models/`` names, or None when it is not an inference URL.

    Raises:
        InvalidArgument: a version that is not a number TF Serving accepts.
    """
    match = _INFERENCE_URL.fullmatch(path)
    if match is None:
        return None
    name, version, label, verb = match.groups()
    return InferenceCall(ModelSpec(name, url_version(version), label), verb.lower())


def url_version(text: str | None) -> int | None:
    """A version from the URL, parsed as TF Serving's ``safe_strto64`` parses it."""
    if text is None:
        return None
    try:
        version = int(text)
    except ValueError:
        version = -1
    if not 0 <= version < 2**63:
        raise InvalidArgument(f"Failed to convert version: {text} to numeric.")
    return version


class _PredictJson:
    """A ``:predict`` body, parsed when the engine asks for its signature name (``PredictDecoder``)."""

    __slots__ = ("_body", "_text", "row_format")

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._text: codec.PredictText | None = None
        self.row_format = False

    def signature_name(self) -> str:
        self._text = codec.PredictText(self._body)
        return self._text.signature_name

    def inputs(self, key: str, signature: SignatureInfo | None) -> Mapping[str, np.ndarray]:
        if signature is None:
            raise InvalidArgument(f'Serving signature name: "{key}" not found in signature def')
        assert self._text is not None
        request = self._text.decode(signature)
        self.row_format = request.row_format
        return request.inputs


class _ExamplesJson:
    """A ``:classify`` or ``:regress`` body, parsed whole when the engine asks for its signature name."""

    __slots__ = ("_body", "_examples")

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._examples: list[bytes] = []

    def signature_name(self) -> str:
        request = codec.decode_examples_request(codec.parse_json_body(self._body))
        self._examples = list(request.examples)
        return request.signature_name

    def examples(self) -> list[bytes]:
        return self._examples


async def answer(
    engine: Engine, call: InferenceCall, body: bytes, headers: Mapping[str, str], context: RequestContext
) -> bytes:
    """The JSON answer to one inference request.

    Raises:
        TfServeError: TF Serving's error for the request (the engine has counted it).
    """
    if call.verb == "predict":
        predict = _PredictJson(body)
        result = await engine.predict(call.spec, predict, headers=headers, context=context)
        return codec.encode_predict_response(result.outputs, predict.row_format)
    examples = _ExamplesJson(body)
    if call.verb == "classify":
        classified = await engine.classify(call.spec, examples, headers=headers, context=context)
        return codec.encode_classify_response(classified.classes, classified.scores)
    regression = await engine.regress(call.spec, examples, headers=headers, context=context)
    return codec.encode_regress_response(regression.values)

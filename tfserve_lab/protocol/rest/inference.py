"""``POST /v1/models/NAME[/versions/N|/labels/L]:predict|classify|regress``, without HTTP objects.

The URL is parsed first (a malformed one is answered without touching the
engine); then the JSON body is decoded, the engine called and the answer
encoded, as TF Serving's http_rest_api_handler does it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from tfserve_lab.core.engine import Engine
from tfserve_lab.core.types import DEFAULT_SIGNATURE, ModelSpec, RequestContext
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


async def answer(
    engine: Engine, call: InferenceCall, body: bytes, headers: Mapping[str, str], context: RequestContext
) -> bytes:
    """The JSON answer to one inference request.

    Raises:
        TfServeError: TF Serving's error for the request (the engine has counted it when it ran the model).
    """
    if call.verb == "predict":
        text = codec.PredictText(body)
        with engine.acquire(call.spec, headers) as handle:
            key = text.signature_name or DEFAULT_SIGNATURE
            info = handle.servable.signatures.get(key)
            if info is None:
                raise InvalidArgument(f'Serving signature name: "{key}" not found in signature def')
            request = text.decode(info)
            result = await engine.predict(handle, key, request.inputs, context=context)
        return codec.encode_predict_response(result.outputs, request.row_format)
    examples = codec.decode_examples_request(codec.parse_json_body(body))
    with engine.acquire(call.spec, headers) as handle:
        if call.verb == "classify":
            classified = await engine.classify(handle, examples.signature_name, examples.examples, context=context)
            return codec.encode_classify_response(classified.classes, classified.scores)
        regression = await engine.regress(handle, examples.signature_name, examples.examples, context=context)
        return codec.encode_regress_response(regression.values)

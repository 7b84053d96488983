"""The x-amples of EventGate's own test spec that apply outside its test factory.

EventGate's test suite runs these against its `test/schemas`; the ones whose streams are
`__throw_*__` exercise hooks of its test factory (Kafka produce errors) and do not apply.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import WM

SPEC = yaml.safe_load((WM / "eventgate/test/spec.test.yaml").read_text())
TEST_SCHEMAS = WM / "eventgate/test/schemas"
#: test_events of eventgate's config.test.yaml
TEST_EVENTS = (
    {
        "$schema": "/test/0.0.2",
        "meta": {"stream": "test_events", "id": "12345678-1234-5678-1234-567812345678"},
    },
)


def applicable():
    for path, methods in SPEC["paths"].items():
        for method, op in methods.items():
            for ample in op.get("x-amples", []):
                if "__throw_" in json.dumps(ample["request"].get("body")):
                    continue
                yield pytest.param(path, method, ample, id=f"{method} {path}: {ample['title']}")


@pytest.fixture
async def spec_server(make_server):
    # EventGate's test config: schema_base_uris: [test/schemas/] (a trailing slash)
    return await make_server(
        schema_dirs=(TEST_SCHEMAS,),
        schema_base_slash=True,
        fill_ins=False,
        test_events=TEST_EVENTS,
    )


def test_enough_examples_apply():
    assert len(list(applicable())) >= 12


@pytest.mark.parametrize(("path", "method", "ample"), list(applicable()))
async def test_spec_example(path, method, ample, spec_server, http):
    request = ample["request"]
    query = {
        k: str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in request.get("query", {}).items()
    }
    body = request.get("body")
    data = json.dumps(body).encode() if body is not None else b""
    async with http.request(
        method.upper(),
        spec_server.url + path,
        params=query,
        headers=request.get("headers", {}),
        data=data if method == "post" else None,
    ) as resp:
        raw = await resp.read()
        assert resp.status == ample["response"]["status"], raw[:500]
    expected = ample["response"].get("body")
    if expected == "":
        assert raw == b""
    elif isinstance(expected, dict):
        got = json.loads(raw)
        for kind, items in expected.items():
            assert len(got[kind]) == len(items)
            for want, have in zip(items, got[kind], strict=True):
                for key, value in want["context"].items():
                    assert have["context"][key] == value

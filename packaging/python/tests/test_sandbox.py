"""The wheel as a Python user gets it: the fixture, plain HTTP, no Rust."""

import json
import os
import shutil
import urllib.error
import urllib.request

import pytest

from tokportal_sandbox import SandboxError, Sandbox, binary_path, start_sandbox, stop_sandbox

KEY = "sk_test_python"


def call(url, method="GET", body=None, key=KEY):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("X-API-Key", key)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_no_rust_toolchain_is_needed():
    assert shutil.which("cargo") is None, "this test runs with no Rust on PATH"
    assert os.path.isfile(binary_path())


def test_the_fixture_serves_the_contract(tokportal_sandbox):
    status, balance = call(f"{tokportal_sandbox}/credits/balance")
    assert status == 200
    assert balance["data"]["balance"] == 1000
    status, created = call(
        f"{tokportal_sandbox}/bundles", "POST", {"bundle_type": "account_only", "country": "USA"}
    )
    assert status == 201, created
    assert created["data"]["status"] == "draft"
    status, refused = call(f"{tokportal_sandbox}/bundles", "POST", {"bundle_type": "nope"})
    assert status == 400
    assert refused["error"]["code"] == "VALIDATION_ERROR"
    # The journal the inspector page reads names the failing field.
    status, journal = call(f"{tokportal_sandbox}/_sandbox/requests?status=4xx")
    assert status == 200
    assert [e["violations"][0]["field"] for e in journal["data"]] == ["bundle_type"]


def test_each_test_gets_a_fresh_sandbox(tokportal_sandbox):
    status, listed = call(f"{tokportal_sandbox}/bundles")
    assert status == 200
    assert listed["pagination"]["total"] == 0


def test_start_and_stop_by_hand():
    url = start_sandbox(["--credits", "5"])
    status, balance = call(f"{url}/credits/balance")
    assert (status, balance["data"]["balance"]) == (200, 5)
    stop_sandbox(url)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/_sandbox/health", timeout=2)


def test_a_sandbox_that_cannot_start_says_why():
    with pytest.raises(SandboxError) as raised:
        Sandbox(["--credits", "not-a-number"])
    assert "not-a-number" in str(raised.value)

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


def test_the_fixture_advances_a_keys_clock_and_verifies(tokportal_sandbox):
    from tokportal_sandbox import SandboxError, VerificationError

    key = "sk_test_python_clock"
    clock = tokportal_sandbox.set_clock(key=key, frozen_at="2026-06-01T00:00:00Z")
    assert clock["simulated"] is True and clock["now"] == "2026-06-01T00:00:00Z"
    status, bundle = call(
        f"{tokportal_sandbox}/bundles", "POST", {"bundle_type": "account_only", "country": "USA"}, key=key
    )
    assert status == 201 and bundle["data"]["created_at"] == "2026-06-01T00:00:00Z"
    bundle_id = bundle["data"]["id"]
    call(f"{tokportal_sandbox}/bundles/{bundle_id}/account", "PUT", {"username": "py_clock", "visible_name": "Py"}, key=key)
    status, published = call(f"{tokportal_sandbox}/bundles/{bundle_id}/publish", "POST", key=key)
    assert status == 200 and published["data"]["account_status"] == "published"
    moved = tokportal_sandbox.advance("2d", key=key)
    assert [(t["at"], t["to"]) for t in moved["transitions"]] == [("2026-06-03T00:00:00Z", "in_review")]
    assert tokportal_sandbox.clock(key="sk_test_someone_else")["simulated"] is False
    assert tokportal_sandbox.verify(operation="createBundle", times=1, key=key)["found"] == 1
    with pytest.raises(VerificationError) as failed:
        tokportal_sandbox.verify(operation="createBundle", times=2, key=key)
    assert failed.value.found == 1 and failed.value.closest
    with pytest.raises(SandboxError) as refused:
        tokportal_sandbox.advance(key=key, to="2020-01-01T00:00:00Z")
    assert refused.value.code == "CLOCK_BACKWARDS"
    assert tokportal_sandbox.real_time(key=key)["simulated"] is False


def test_a_world_built_once_is_restored_before_each_test(tokportal_sandbox):
    key = "sk_test_python_world"
    status, made = call(
        f"{tokportal_sandbox}/bundles", "POST", {"bundle_type": "account_only", "country": "USA"}, key=key
    )
    assert status == 201
    world = tokportal_sandbox.snapshot()
    assert world["version"] == 1 and len(world["keys"]) == 1
    # A test changes the world...
    call(f"{tokportal_sandbox}/bundles", "POST", {"bundle_type": "account_only", "country": "USA"}, key=key)
    status, listed = call(f"{tokportal_sandbox}/bundles", key=key)
    assert listed["pagination"]["total"] == 2
    # ...and the next one starts from it again.
    restored = tokportal_sandbox.restore(world)
    assert len(restored["restored"]) == 1
    status, listed = call(f"{tokportal_sandbox}/bundles", key=key)
    assert listed["pagination"]["total"] == 1
    assert listed["data"][0]["id"] == made["data"]["id"]

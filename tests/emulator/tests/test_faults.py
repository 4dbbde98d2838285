"""Fault injection (each kind observable by a plain requests client), ARM throttling, counters."""
import time

import pytest
import requests

from dpemu_helpers import cli, db_request, unique


def add_fault(emu, **spec):
    return emu.control("POST", "/faults", spec)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_status_faults(emu, status):
    add_fault(emu, kind="status", status=status, method="GET", path="/backupVaults/TestBkpVault$", count=1,
              retry_after=2 if status == 429 else None)
    r = emu.arm("GET", emu.bv)
    assert r.status_code == status
    assert r.json()["error"]["code"]
    if status == 429:
        assert r.headers["Retry-After"] == "2"
    assert emu.arm("GET", emu.bv).status_code == 200          # count=1: the next call is served


def test_latency_fault(emu):
    add_fault(emu, kind="latency", latency=0.6, method="GET", path="/backupVaults/TestBkpVault$", count=1)
    t0 = time.monotonic()
    assert emu.arm("GET", emu.bv).status_code == 200
    assert time.monotonic() - t0 >= 0.6


def _restore_counts(emu):
    return emu.control("GET", "/counters")["counters"].get("restore_jobs_created", 0)


def test_drop_before_does_not_process_the_request(emu):
    rp = emu.latest_point()["name"]
    before = _restore_counts(emu)
    add_fault(emu, kind="drop_before", method="POST", path="/restore$", count=1)
    with pytest.raises(requests.ConnectionError):
        emu.arm("POST", emu.bi("empdb11")["id"] + "/restore", db_request(emu, rp, unique()))
    assert _restore_counts(emu) == before


def test_drop_after_creates_the_job_but_resets_the_client(emu):
    rp = emu.latest_point()["name"]
    before = _restore_counts(emu)
    jobs_before = {j["name"] for j in emu.arm("GET", emu.bv + "/backupJobs", params={"api-version": "2024-04-01"})
                   .json()["value"]}
    add_fault(emu, kind="drop_after", method="POST", path="/restore$", count=1)
    db = unique("dropped")
    with pytest.raises(requests.ConnectionError):
        emu.arm("POST", emu.bi("empdb11")["id"] + "/restore", db_request(emu, rp, db))
    assert _restore_counts(emu) == before + 1
    # The client can find the job it started (newest first in the list) and wait for it.
    job = emu.arm("GET", emu.bv + "/backupJobs").json()["value"][0]
    assert job["name"] not in jobs_before and job["properties"]["extendedInfo"]["recoveryDestination"].endswith(db)
    assert emu.wait_job(job["name"])["properties"]["status"] == "Completed"


def test_status_on_a_post_answers_without_processing_it(emu):
    rp = emu.latest_point()["name"]
    before = _restore_counts(emu)
    add_fault(emu, kind="status", status=500, method="POST", path="/restore$", count=1)
    r = emu.arm("POST", emu.bi("empdb11")["id"] + "/restore", db_request(emu, rp, unique()))
    assert r.status_code == 500 and r.json()["error"]["code"] == "InternalServerError"
    assert _restore_counts(emu) == before


@pytest.mark.parametrize("status", [500, 503])
def test_status_after_processes_the_request_then_answers_the_status(emu, status):
    """The service took the restore (the job exists) but answers a 5xx instead of its 202."""
    rp = emu.latest_point()["name"]
    before = _restore_counts(emu)
    add_fault(emu, kind="status_after", status=status, method="POST", path="/restore$", count=1)
    db = unique("status_after")
    r = emu.arm("POST", emu.bi("empdb11")["id"] + "/restore", db_request(emu, rp, db))
    assert r.status_code == status and r.json()["error"]["code"] in ("InternalServerError", "ServiceUnavailable")
    assert "Azure-AsyncOperation" not in r.headers
    assert _restore_counts(emu) == before + 1
    job = emu.arm("GET", emu.bv + "/backupJobs").json()["value"][0]
    assert job["properties"]["extendedInfo"]["recoveryDestination"].endswith(db)
    assert emu.wait_job(job["name"])["properties"]["status"] == "Completed"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_status_faults_on_the_token_endpoint_answer_as_aad(emu, status):
    add_fault(emu, kind="status", status=status, method="POST", path=r"/oauth2/v2\.0/token$", count=1,
              retry_after=3 if status == 429 else None)
    url = "%s/%s/oauth2/v2.0/token" % (emu.url, emu.tenant)
    form = {"grant_type": "client_credentials", "client_id": emu.env["AZURE_CLIENT_ID"],
            "client_secret": emu.env["AZURE_SECRET"], "scope": "https://management.azure.com/.default"}
    r = requests.post(url, data=form, verify=emu.ca)
    assert r.status_code == status and r.json()["error"] and "access_token" not in r.json()
    if status == 429:
        assert r.headers["Retry-After"] == "3"
    assert requests.post(url, data=form, verify=emu.ca).status_code == 200


def test_throttling_token_bucket(emu):
    emu.set_knobs(throttle={"enabled": True, "read_capacity": 4, "read_refill": 1.0})
    try:
        statuses, remaining = [], []
        for _ in range(6):
            r = emu.arm("GET", emu.bv)
            statuses.append(r.status_code)
            remaining.append(r.headers.get("x-ms-ratelimit-remaining-subscription-reads"))
        assert statuses[:4] == [200] * 4 and 429 in statuses[4:]
        throttled = [r for r in [emu.arm("GET", emu.bv)] if r.status_code == 429]
        if throttled:
            assert int(throttled[0].headers["Retry-After"]) >= 1
            assert throttled[0].json()["error"]["code"] == "TooManyRequests"
        assert remaining[0] == "3" and remaining[3] == "0"
        assert emu.control("GET", "/counters")["counters"]["throttled_429"] >= 1
        time.sleep(1.2)
        assert emu.arm("GET", emu.bv).status_code == 200       # refilled
    finally:
        emu.set_knobs(throttle={"enabled": False, "read_capacity": 250, "read_refill": 25.0})


def test_counters_and_cli_fault(emu):
    counters = emu.control("GET", "/counters")
    assert counters["requests"]["GET dataprotection.vaults.get"] >= 1
    assert counters["counters"]["restores_requested"] >= 1 and counters["counters"]["restore_jobs_created"] >= 1
    out = cli("fault", "add", "--state", emu.state, "--kind", "status", "--status", "503", "--method", "GET",
              "--path", "/backupJobs$", "--count", "1")
    assert '"kind": "status"' in out.stdout
    assert emu.arm("GET", emu.bv + "/backupJobs").status_code == 503
    assert emu.arm("GET", emu.bv + "/backupJobs").status_code == 200

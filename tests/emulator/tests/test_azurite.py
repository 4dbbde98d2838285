"""Azurite as the blob data plane of a restore as files: started with the emulator (127.0.0.1, the emulator's CA,
--oauth basic), written by the restore job with the file names Microsoft documents for flexible servers, read by
azure-storage-blob with azure-identity's credential from the emulator's authority."""
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET

import pytest
import requests

from dpemulator import postgres as pg
from dpemulator.azurite import find_binary

from dpemu_helpers import files_request, unique

pytestmark = pytest.mark.skipif(find_binary() is None, reason="Azurite is not installed (scripts/ensure-azurite.sh)")


def _restore(emu, body):
    bi = emu.bi("sourceflexserver")
    r = emu.arm("POST", bi["id"] + "/restore", body)
    assert r.status_code == 202, r.text
    op = emu.poll_operation(r)
    assert op["status"] == "Succeeded", op
    return emu.wait_job(op["properties"]["jobId"])


def _container(emu):
    from azure.identity import ClientSecretCredential
    from azure.storage.blob import ContainerClient
    cred = ClientSecretCredential(emu.tenant, emu.env["AZURE_CLIENT_ID"], emu.env["AZURE_SECRET"],
                                  authority=emu.url, disable_instance_discovery=True, connection_verify=emu.ca)
    return ContainerClient.from_container_url(emu.env["DPEMULATOR_BLOB_URL"] + "targetossstorage/restored-files",
                                              credential=cred, connection_verify=emu.ca)


def test_azurite_runs_on_loopback_with_the_emulators_tls(emu):
    url = emu.env["DPEMULATOR_BLOB_URL"]
    assert url.startswith("https://127.0.0.1:")
    for pid_file in ("azurite.pid", "blobgate.pid"):       # Azurite and its authorizing gate, by their pids
        os.kill(int(open(os.path.join(emu.state, pid_file)).read()), 0)
    # no token: the gate answers as Azure does (the container is private)
    r = requests.get(url + "targetossstorage/restored-files?restype=container&comp=list", verify=emu.ca)
    assert r.status_code in (401, 403, 404), r.status_code


def test_flexible_restore_as_files_writes_documented_files_to_azurite(emu, tmp_path):
    rp = emu.latest_point("sourceflexserver")
    prefix = unique("flexaz")
    body = files_request(emu, rp["name"], prefix)
    body["restoreTargetInfo"]["targetDetails"]["url"] = emu.env["DPEMULATOR_BLOB_URL"] + \
        "targetossstorage/restored-files"
    job = _restore(emu, body)
    assert job["properties"]["status"] == "Completed", job
    container = _container(emu)
    blobs = {b.name: b for b in container.list_blobs(name_starts_with=prefix)}
    assert sorted(blobs) == ["%s_%s.sql" % (prefix, n) for n in ("inventory", "orders", "roles", "schema",
                                                                 "tablespace")]
    for blob in blobs.values():
        assert blob.content_settings.content_md5, blob.name          # the MD5 a download can check
    dump = tmp_path / "orders.sql"
    with open(dump, "wb") as fh:
        container.download_blob(prefix + "_orders.sql").readinto(fh)
    assert dump.read_bytes()[:5] == b"PGDMP"
    listing = subprocess.run(["pg_restore", "-l", str(dump)], capture_output=True, text=True, check=True).stdout
    assert "TABLE DATA" in listing
    roles = container.download_blob(prefix + "_roles.sql").readall()
    assert b"CREATE ROLE flexadmin" in roles
    # the job names the files' place as the service does
    assert job["properties"]["extendedInfo"]["recoveryDestination"].endswith("/restored-files/" + prefix)


def test_a_cancelled_or_failed_files_job_removes_its_azurite_blobs(emu):
    rp = emu.latest_point("sourceflexserver")
    prefix = unique("flexfail")
    body = files_request(emu, rp["name"], prefix)
    body["restoreTargetInfo"]["targetDetails"]["url"] = emu.env["DPEMULATOR_BLOB_URL"] + \
        "targetossstorage/restored-files"
    emu.control("POST", "/faults", {"kind": "job_failure", "method": "POST", "path": "/restore$", "count": 1,
                                    "code": "UserErrorRestoreFailed"})
    job = _restore(emu, body)
    assert job["properties"]["status"] == "Failed"
    assert list(_container(emu).list_blobs(name_starts_with=prefix)) == []


def test_flexible_servers_are_real_tls_clusters(emu):
    s = emu.servers()["targetflexserver"]
    server = pg.attach(s["host"], s["port"], s["admin_user"], s["admin_password"])
    assert server.ssl


READONLY = ("5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a803", "emu-readonly-secret-Lm3", "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d03")
READER_ROLE = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"          # Storage Blob Data Reader
AUTHZ = "/providers/Microsoft.Authorization"


def _blob_call(emu, method, path, token, base=None, **kw):
    headers = dict(kw.pop("headers", {}), Authorization="Bearer " + token, **{"x-ms-version": "2023-11-03"})
    return requests.request(method, (base or emu.env["DPEMULATOR_BLOB_URL"]) + path, headers=headers, verify=emu.ca,
                            timeout=60, **kw)


def test_the_gate_enforces_blob_data_roles_as_azure_does(emu):
    """Azurite lets any storage token in; the gate in front of it checks the principal's blob data role as Azure does
    (403 AuthorizationPermissionMismatch with the XML error body) and passes allowed calls through unchanged."""
    rp = emu.latest_point("sourceflexserver")
    prefix = unique("flexgate")
    body = files_request(emu, rp["name"], prefix)
    body["restoreTargetInfo"]["targetDetails"]["url"] = emu.env["DPEMULATOR_BLOB_URL"] + \
        "targetossstorage/restored-files"
    assert _restore(emu, body)["properties"]["status"] == "Completed"
    storage = "https://storage.azure.com/.default"
    readonly = emu.token(storage, client_id=READONLY[0], secret=READONLY[1])
    owner = emu.token(storage)
    listing = "targetossstorage/restored-files?restype=container&comp=list&prefix=" + prefix
    blob = "targetossstorage/restored-files/%s_orders.sql" % prefix

    r = _blob_call(emu, "GET", listing, readonly)
    assert r.status_code == 403 and r.headers["x-ms-error-code"] == "AuthorizationPermissionMismatch", r.text
    err = ET.fromstring(r.content)
    assert err.findtext("Code") == "AuthorizationPermissionMismatch"
    assert err.findtext("Message").startswith("This request is not authorized to perform this operation using this "
                                              "permission.")
    assert _blob_call(emu, "HEAD", blob, readonly).status_code == 403
    # Azurite itself would have let it in: the gate is what enforces the role
    with open(os.path.join(emu.state, "state.json")) as fh:
        azurite = "https://127.0.0.1:%d/" % json.load(fh)["meta"]["azurite_port"]
    assert _blob_call(emu, "GET", listing, readonly, base=azurite).status_code == 200
    # a token the emulator's authority did not sign
    head, claims, _sig = readonly.split(".")
    r = _blob_call(emu, "GET", listing, head + "." + claims + ".forged")
    assert r.status_code == 401 and r.headers["x-ms-error-code"] == "InvalidAuthenticationInfo"
    assert "WWW-Authenticate" in r.headers

    # Storage Blob Data Reader at the container: reads go through unchanged (list, HEAD, Range), writes still do not
    acct = "/subscriptions/%s/resourceGroups/targetrg/providers/Microsoft.Storage/storageAccounts/targetossstorage" % (
        emu.sub)
    scope = acct + "/blobServices/default/containers/restored-files"
    name = str(uuid.uuid4())
    grant = {"properties": {"roleDefinitionId": "/subscriptions/%s%s/roleDefinitions/%s" % (emu.sub, AUTHZ,
                                                                                              READER_ROLE),
                            "principalId": READONLY[2], "principalType": "ServicePrincipal"}}
    assert emu.arm("PUT", scope + AUTHZ + "/roleAssignments/" + name, grant,
                   params={"api-version": "2022-04-01"}).status_code == 201
    try:
        r = _blob_call(emu, "GET", listing, readonly)
        assert r.status_code == 200 and (prefix + "_orders.sql").encode() in r.content
        full = _blob_call(emu, "GET", blob, owner).content
        head = _blob_call(emu, "HEAD", blob, readonly)
        assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(full)
        part = _blob_call(emu, "GET", blob, readonly, headers={"x-ms-range": "bytes=5-1000"})
        assert part.status_code == 206 and part.content == full[5:1001]
        assert part.headers["Content-Range"] == "bytes 5-1000/%d" % len(full)
        r = _blob_call(emu, "PUT", "targetossstorage/restored-files/%s_new" % prefix, readonly, data=b"x",
                       headers={"x-ms-blob-type": "BlockBlob"})
        assert r.status_code == 403 and r.headers["x-ms-error-code"] == "AuthorizationPermissionMismatch"
        r = _blob_call(emu, "PUT", "targetossstorage/restored-files/%s_new" % prefix, owner, data=b"x" * 10,
                       headers={"x-ms-blob-type": "BlockBlob"})
        assert r.status_code == 201, r.text
        assert _blob_call(emu, "GET", "targetossstorage/restored-files/%s_new" % prefix, readonly).content == \
            b"x" * 10
    finally:
        emu.arm("DELETE", scope + AUTHZ + "/roleAssignments/" + name, params={"api-version": "2022-04-01"})
    assert _blob_call(emu, "GET", listing, readonly).status_code == 403        # the revoke is seen at once


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_after_a_killed_emulator_stops_its_gate_and_azurite_by_pid():
    """A SIGKILLed emulator cannot stop its children: `dpemulator stop` then stops the gate and Azurite by their pid
    files (and removes them)."""
    from dpemu_helpers import GRANTED, cli, start_emulator
    e = start_emulator(GRANTED)
    try:
        pids = {name: int(open(os.path.join(e.state, name)).read()) for name in ("blobgate.pid", "azurite.pid")}
        assert all(_alive(pid) for pid in pids.values())
        os.kill(e.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(e.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(_alive(pid) for pid in pids.values())          # left behind by the kill
        assert "stopped a leftover Azurite" in cli("stop", "--state", e.state, check=False).stdout
        assert not any(_alive(pid) for pid in pids.values())
        assert not any(os.path.exists(os.path.join(e.state, name)) for name in pids)
    finally:
        e.stop()
        shutil.rmtree(e.state, ignore_errors=True)

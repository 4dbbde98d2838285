"""Azurite as the blob data plane of a restore as files: started with the emulator (127.0.0.1, the emulator's CA,
--oauth basic), written by the restore job with the file names Microsoft documents for flexible servers, read by
azure-storage-blob with azure-identity's credential from the emulator's authority."""
import os
import subprocess

import pytest

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
    pid = int(open(os.path.join(emu.state, "azurite.pid")).read())
    os.kill(pid, 0)
    # no token: Azurite answers as Azure does (the container is private)
    import requests
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

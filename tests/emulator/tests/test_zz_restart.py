"""State survives a restart, an in-flight restore resumes and completes, start is idempotent.
(Runs late: it restarts the session's demo-world emulator.)"""
import requests

from dpemu_helpers import cli, files_request, unique

AUTHZ = "/providers/Microsoft.Authorization"


def test_restart_keeps_state_and_resumes_inflight_restore(emu_demo):
    emu = emu_demo
    pid0 = emu.pid
    # Idempotent start: same process.
    out = cli("start", "--state", emu.state, "--world", emu.world)
    assert "already running" in out.stdout
    vault_pid = emu.arm("GET", emu.bv).json()["identity"]["principalId"]
    container = "/subscriptions/%s/resourceGroups/targetrg/providers/Microsoft.Storage/storageAccounts/" \
                "targetossstorage/blobServices/default/containers/restored-files" % emu.sub
    ra_name = "5a1e0000-0000-4000-8000-00000000beef"
    r = emu.arm("PUT", container + AUTHZ + "/roleAssignments/" + ra_name, {"properties": {
        "roleDefinitionId": "/subscriptions/%s%s/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe"
                            % (emu.sub, AUTHZ), "principalId": vault_pid}}, params={"api-version": "2022-04-01"})
    assert r.status_code == 201, r.text
    kv_tok = emu.token("https://vault.azure.net/.default")
    r = requests.put(emu.url + "/keyvaults/targetosskv/secrets/persisted", params={"api-version": "7.4"},
                     json={"value": "still-here"}, verify=emu.ca, headers={"Authorization": "Bearer " + kv_tok})
    assert r.status_code == 200
    emu.set_knobs(job_duration=6, page_size=7)
    rp = emu.latest_point()["name"]
    points_before = len(emu.arm("GET", emu.bi("empdb11")["id"] + "/recoveryPoints",
                                params={"api-version": "2024-04-01", "$top": "100"}).json()["value"])
    prefix = unique("restart")
    r = emu.arm("POST", emu.bi("empdb11")["id"] + "/restore", files_request(emu, rp, prefix))
    op = emu.poll_operation(r)
    job_id = op["properties"]["jobId"]
    assert emu.arm("GET", job_id).json()["properties"]["status"] == "InProgress"

    cli("stop", "--state", emu.state)
    cli("start", "--state", emu.state)          # no --world: the state remembers it
    emu.load()
    assert emu.pid != pid0
    # Everything is still there.
    assert emu.arm("GET", emu.bv).json()["identity"]["principalId"] == vault_pid
    assert emu.arm("GET", container + AUTHZ + "/roleAssignments/" + ra_name,
                   params={"api-version": "2022-04-01"}).status_code == 200
    kv_tok = emu.token("https://vault.azure.net/.default")
    got = requests.get(emu.url + "/keyvaults/targetosskv/secrets/persisted", params={"api-version": "7.4"},
                       verify=emu.ca, headers={"Authorization": "Bearer " + kv_tok})
    assert got.json()["value"] == "still-here"
    assert emu.control("GET", "/knobs")["page_size"] == 7
    pts = emu.arm("GET", emu.bi("empdb11")["id"] + "/recoveryPoints").json()["value"]
    assert len(pts) == min(points_before, 7)
    # The in-flight restore resumed and completed; its file is in the container.
    job = emu.wait_job(job_id)
    assert job["properties"]["status"] == "Completed", job
    blob = requests.get("%s/blob/targetossstorage/restored-files/%s.dump" % (emu.url, prefix), verify=emu.ca,
                        headers={"Authorization": "Bearer " + emu.token("https://storage.azure.com/.default"),
                                 "x-ms-version": "2023-11-03"})
    assert blob.status_code == 200 and blob.content[:5] == b"PGDMP"
    emu.set_knobs(job_duration=0.5, page_size=5)

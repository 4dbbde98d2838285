"""Cross-region restore on the emulator (world crr.yml): the vault's CRR settings and paired region, secondary points
that lag the primary ones, the locations/{secondary} calls with the service's errors, the regional outage knob, and
the official SDK's cross-region operations running the whole flow into a server in the secondary region."""
import os
import shutil

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.identity import ClientSecretCredential
from azure.mgmt.dataprotection import DataProtectionMgmtClient

from dpemulator import postgres as pg

from dpemu_helpers import VAULT, VAULT_RG, WORLDS, db_request, start_emulator, unique

SECONDARY, PRIMARY = "northeurope", "westeurope"


@pytest.fixture(scope="module")
def emu_crr():
    e = start_emulator(os.path.join(WORLDS, "crr.yml"))
    yield e
    e.stop()
    shutil.rmtree(e.state, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_outage(emu_crr):
    yield
    emu_crr.set_knobs(region_outage={"region": ""}, secondary_lag_hours=12)
    emu_crr.control("DELETE", "/faults")


def _loc(emu, loc=SECONDARY, rg=VAULT_RG):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataProtection/locations/%s" % (emu.sub, rg, loc)


def _client(emu, **kw):
    cred = ClientSecretCredential(emu.tenant, emu.env["AZURE_CLIENT_ID"], emu.env["AZURE_SECRET"], authority=emu.url,
                                  disable_instance_discovery=True, connection_verify=emu.ca)
    return DataProtectionMgmtClient(cred, emu.sub, base_url=emu.url, connection_verify=emu.ca, **kw)


def _dr_body(emu, rp_id, db, server="drtargetserver", rg="drtargetrg", kv="drtargetkv", location=SECONDARY):
    body = db_request(emu, rp_id, db, server=server, secret=server + "-conn", kv=kv)
    srv = emu.server_id(server, rg=rg)
    target = body["restoreTargetInfo"]
    target["restoreLocation"] = location
    target["datasourceInfo"].update(resourceID=srv + "/databases/" + db, resourceLocation=location)
    target["datasourceSetInfo"].update(resourceID=srv, resourceLocation=location)
    return body


def _crr_details(emu, bi):
    return {"sourceRegion": PRIMARY, "sourceBackupInstanceId": bi["id"]}


def test_vaults_report_cross_region_settings_and_paired_region(emu_crr):
    grs = emu_crr.arm("GET", emu_crr.bv).json()["properties"]
    assert grs["featureSettings"]["crossRegionRestoreSettings"]["state"] == "Enabled"
    assert grs["storageSettings"][0]["type"] == "GeoRedundant" and grs["replicatedRegions"] == [SECONDARY]
    lrs = emu_crr.arm("GET", emu_crr.bv.replace(VAULT, "TestLrsVault")).json()["properties"]
    assert lrs["featureSettings"]["crossRegionRestoreSettings"]["state"] == "Disabled"
    assert lrs["storageSettings"][0]["type"] == "LocallyRedundant" and lrs["replicatedRegions"] == []


def test_resource_graph_finds_vault_and_instance_while_the_region_is_down(emu_crr):
    emu_crr.set_knobs(region_outage={"region": PRIMARY, "mode": "status", "status": 503})
    assert emu_crr.arm("GET", emu_crr.bv).status_code == 503           # the vault's region is down
    query = lambda q: emu_crr.arm("POST", "/providers/Microsoft.ResourceGraph/resources",  # noqa: E731
                                  {"subscriptions": [emu_crr.sub], "query": q}, params={"api-version": "2021-03-01"})
    r = query("Resources | where type =~ 'microsoft.dataprotection/backupvaults' and resourceGroup =~ '%s' "
              "and name =~ '%s'" % (VAULT_RG.lower(), VAULT.lower()))
    assert r.status_code == 200, r.text
    assert [row["properties"]["replicatedRegions"] for row in r.json()["data"]] == [[SECONDARY]]
    bi = emu_crr.bi("empdb11")
    r = query("RecoveryServicesResources | where type =~ 'microsoft.dataprotection/backupvaults/backupinstances' "
              "and properties.dataSourceInfo.resourceID =~ '%s'" % (emu_crr.server_id("sourceossserver", rg="sourcerg")
                                                                  + "/databases/empdb11"))
    rows = r.json()["data"]
    assert [row["id"] for row in rows] == [bi["id"]]
    assert rows[0]["properties"]["backupInstanceExtendedProperties"] == {
        "protectedPrimaryRegion": PRIMARY, "protectedSecondaryRegion": SECONDARY}
    assert query("Resources | project name").status_code == 400          # what it does not understand, it says


def test_secondary_points_lag_the_primary_ones(emu_crr):
    bi = emu_crr.bi("empdb11")
    fresh = emu_crr.control("POST", "/backup", {"backup_instance": bi["id"]})["name"]
    primary = {p["name"] for p in emu_crr.arm("GET", bi["id"] + "/recoveryPoints").json()["value"]}
    fetch = lambda: emu_crr.arm("POST", _loc(emu_crr) + "/fetchSecondaryRecoveryPoints",  # noqa: E731
                                _crr_details(emu_crr, bi)).json()["value"]
    secondary = {p["name"] for p in fetch()}
    assert fresh in primary and fresh not in secondary and secondary and secondary < primary
    emu_crr.set_knobs(secondary_lag_hours=0)
    assert fresh in {p["name"] for p in fetch()}


def test_cross_region_calls_answer_the_services_errors(emu_crr):
    bi = emu_crr.bi("empdb11")
    rp = emu_crr.arm("POST", _loc(emu_crr) + "/fetchSecondaryRecoveryPoints",
                     _crr_details(emu_crr, bi)).json()["value"][0]["name"]
    lrs_bi = bi["id"].replace("/backupVaults/%s/" % VAULT, "/backupVaults/TestLrsVault/")
    r = emu_crr.arm("POST", _loc(emu_crr) + "/fetchSecondaryRecoveryPoints",
                    {"sourceRegion": PRIMARY, "sourceBackupInstanceId": lrs_bi})
    assert r.status_code == 400 and r.json()["error"]["code"] == "UserErrorCrossRegionRestoreNotEnabled"
    r = emu_crr.arm("POST", _loc(emu_crr, PRIMARY) + "/fetchSecondaryRecoveryPoints", _crr_details(emu_crr, bi))
    assert r.status_code == 400 and r.json()["error"]["code"] == "UserErrorInvalidSecondaryRegion"
    # a target in the primary region: the validation fails with the service's code, nothing is restored
    body = {"restoreRequestObject": db_request(emu_crr, rp, unique("crr")),
            "crossRegionRestoreDetails": _crr_details(emu_crr, bi)}
    op = emu_crr.poll_operation(emu_crr.arm("POST", _loc(emu_crr) + "/validateCrossRegionRestore", body))
    assert op["status"] == "Failed"
    assert op["error"]["code"] == "UserErrorCrossRegionRestoreTargetNotInSecondaryRegion", op
    assert "/locations/%s/operationStatus/" % SECONDARY in op["id"]


def test_outage_resets_primary_connections_and_secondary_answers(emu_crr):
    emu_crr.set_knobs(region_outage={"region": PRIMARY, "mode": "reset"})
    bi = emu_crr.bi("empdb11")
    with pytest.raises(requests.ConnectionError):
        emu_crr.arm("GET", bi["id"] + "/recoveryPoints")
    r = emu_crr.arm("POST", _loc(emu_crr) + "/fetchSecondaryRecoveryPoints", _crr_details(emu_crr, bi))
    assert r.status_code == 200 and r.json()["value"]


def test_sdk_cross_region_operations_restore_into_the_secondary_region(emu_crr):
    bi = emu_crr.bi("empdb11")
    emu_crr.control("POST", "/seed-points", {"backup_instance": bi["id"], "count": 12, "interval_hours": 24})
    emu_crr.set_knobs(region_outage={"region": PRIMARY, "mode": "status", "status": 503})
    quick = _client(emu_crr, retry_total=0)
    with pytest.raises((HttpResponseError, ServiceRequestError)):
        list(quick.recovery_points.list(VAULT_RG, VAULT, bi["name"]))   # the primary region is down
    c = _client(emu_crr)
    details = {"sourceRegion": PRIMARY, "sourceBackupInstanceId": bi["id"]}
    pages = list(c.fetch_secondary_recovery_points.list(VAULT_RG, SECONDARY, details).by_page())
    points = [p for page in pages for p in page]
    assert len(pages) >= 2 and len({p.name for p in points}) == len(points) >= 6   # nextLink followed (GET)
    rp = max(points, key=lambda p: p.properties.recovery_point_time)
    db = unique("crrsdk")
    body = {"restoreRequestObject": _dr_body(emu_crr, rp.name, db), "crossRegionRestoreDetails": details}
    poller = c.backup_instances.begin_validate_cross_region_restore(VAULT_RG, SECONDARY, body, polling_interval=0.2)
    assert poller.result().object_type == "OperationJobExtendedInfo"
    result = c.backup_instances.begin_trigger_cross_region_restore(VAULT_RG, SECONDARY, body,
                                                                   polling_interval=0.2).result()
    guid = result.job_id.rstrip("/").rsplit("/", 1)[-1]
    job_req = {"sourceRegion": PRIMARY, "sourceBackupVaultId": emu_crr.bv, "jobId": guid}
    for _ in range(300):
        job = c.fetch_cross_region_restore_job.get(VAULT_RG, SECONDARY, job_req)
        if job.properties.status in ("Completed", "Failed"):
            break
    assert job.properties.status == "Completed"
    assert job.properties.extended_info.source_recover_point.recovery_point_id == rp.name
    listed = c.fetch_cross_region_restore_jobs.list(VAULT_RG, SECONDARY, {"sourceRegion": PRIMARY,
                                                                          "sourceBackupVaultId": emu_crr.bv})
    assert guid in {j.name for j in listed}
    emu_crr.set_knobs(region_outage={"region": ""})
    assert emu_crr.arm("GET", emu_crr.bv + "/backupJobs/" + guid).status_code == 404   # not a primary-region job
    s = emu_crr.servers()["drtargetserver"]
    tgt = pg.attach(s["host"], s["port"], s["admin_user"], s["admin_password"])
    assert pg.table_counts(tgt.host, tgt.port, tgt.admin_user, tgt.admin_password, db)["public.employees"] >= 1000

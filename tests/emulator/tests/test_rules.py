"""Every rule the service enforces on validateRestore/restore, triggered and checked by code."""
import time

import pytest
import requests

from dpemulator import postgres as pg

from dpemu_helpers import db_request, files_request, unique

KV_SCOPE = "https://vault.azure.net/.default"


def put_secret(emu, kv, name, value):
    r = requests.put("%s/keyvaults/%s/secrets/%s" % (emu.url, kv, name), params={"api-version": "7.4"},
                     json={"value": value}, verify=emu.ca, headers={"Authorization": "Bearer " + emu.token(KV_SCOPE)})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def validate(emu, body, bi="empdb11"):
    r = emu.arm("POST", emu.bi(bi)["id"] + "/validateRestore", {"restoreRequestObject": body})
    return emu.poll_operation(r)


def assert_fails(op, code):
    assert op["status"] == "Failed", op
    assert op["error"]["code"] == code, op["error"]
    info = op["error"]["additionalInfo"][0]
    assert info["type"] == "UserFacingError" and info["info"]["code"] == code
    assert info["info"]["message"] and isinstance(info["info"]["recommendedAction"], list)
    return info["info"]


def conn_string(emu, server="targetossserver", user=None, password=None):
    s = emu.servers()[server]
    return pg.build_ado_connection_string(s["fqdn"], 5432, "postgres", user or "%s@%s" % (s["admin_user"], server),
                                          password or s["admin_password"])


@pytest.fixture(scope="module")
def rp(emu):
    return emu.latest_point()["name"]


def test_validate_success_has_no_properties(emu, rp):
    op = validate(emu, db_request(emu, rp, unique()))
    assert op["status"] == "Succeeded" and "properties" not in op and op["endTime"] != "0001-01-01T00:00:00Z"


def test_lower_version(emu, rp):
    info = assert_fails(validate(emu, db_request(emu, rp, unique(), server="oldossserver",
                                                 secret="oldossserver-conn")), "UserErrorRestoreToLowerVersion")
    assert "10" in info["message"] and "11" in info["message"]


def test_database_name_in_use(emu, rp):
    assert_fails(validate(emu, db_request(emu, rp, "postgres")), "UserErrorDatabaseNameAlreadyInUse")


def test_secret_missing(emu, rp):
    assert_fails(validate(emu, db_request(emu, rp, unique(), secret="nosuchsecret")), "UserErrorInvalidSecret")


def test_secret_not_a_connection_string(emu, rp):
    put_secret(emu, "targetosskv", "garbage", "postgres://user:pw@host/db")
    assert_fails(validate(emu, db_request(emu, rp, unique(), secret="garbage")),
                 "UserErrorSecretValueInUnsupportedFormat")


def test_key_vault_missing(emu, rp):
    assert_fails(validate(emu, db_request(emu, rp, unique(), kv="nosuchkv")), "UserErrorInvalidSecretStore")


def test_bad_credentials(emu, rp):
    put_secret(emu, "targetosskv", "wrongpw", conn_string(emu, password="Wrong-Password-1"))
    assert_fails(validate(emu, db_request(emu, rp, unique(), secret="wrongpw")), "UserErrorDBUserAuthFailed")


def test_user_without_createdb(emu, rp):
    put_secret(emu, "targetosskv", "nocreate", conn_string(emu, user="nocreate@targetossserver",
                                                           password="NoCreate-Pw-4410"))
    assert_fails(validate(emu, db_request(emu, rp, unique(), secret="nocreate")), "UserErrorMissingDBPermissions")


def test_connection_string_for_another_server(emu, rp):
    put_secret(emu, "targetosskv", "othersrv", conn_string(emu, server="oldossserver"))
    assert_fails(validate(emu, db_request(emu, rp, unique(), secret="othersrv")),
                 "UserErrorSecretValueInUnsupportedFormat")


def test_access_policy_key_vault_works(emu, rp):
    assert validate(emu, db_request(emu, rp, unique(), kv="targetosskvpolicy"))["status"] == "Succeeded"


def test_missing_container(emu, rp):
    assert_fails(validate(emu, files_request(emu, rp, "x", container="nosuchcontainer")),
                 "UserErrorContainerNotAccessible")


def test_flexible_server_is_files_only(emu):
    flex_rp = emu.latest_point("sourceflexserver")["name"]
    assert_fails(validate(emu, db_request(emu, flex_rp, unique()), bi="sourceflexserver"),
                 "UserErrorRestoreAsDatabaseNotSupported")


def test_unknown_recovery_point(emu):
    assert_fails(validate(emu, db_request(emu, "0" * 32, unique())), "UserErrorRecoveryPointNotFound")


def test_vault_identity_permissions_step_by_step(emu_demo):
    """The demo world lacks the restore grants: each missing one has its code, granting fixes it."""
    emu = emu_demo
    rp = emu.latest_point()["name"]
    vault_pid = emu.arm("GET", emu.bv).json()["identity"]["principalId"]
    target = emu.server_id("targetossserver")
    kv_id = "/subscriptions/%s/resourceGroups/targetrg/providers/Microsoft.KeyVault/vaults/targetosskv" % emu.sub
    body = db_request(emu, rp, unique())
    assert_fails(validate(emu, body), "UserErrorMSIMissingPermissions")

    def grant(scope, role_guid, name):
        r = emu.arm("PUT", scope + "/providers/Microsoft.Authorization/roleAssignments/" + name,
                    {"properties": {"roleDefinitionId": "/subscriptions/%s/providers/Microsoft.Authorization/"
                                                        "roleDefinitions/%s" % (emu.sub, role_guid),
                                    "principalId": vault_pid, "principalType": "ServicePrincipal"}},
                    params={"api-version": "2022-04-01"})
        assert r.status_code == 201, r.text

    grant(target, "acdd72a7-3385-48ef-bd42-f606fba81ae7", "0b7a2c1e-0000-4000-8000-000000000001")   # Reader
    assert_fails(validate(emu, body), "UserErrorMissingPermissionsOnSecretStore")
    grant(kv_id, "4633458b-17de-408a-b874-0445c86b69e6", "0b7a2c1e-0000-4000-8000-000000000002")   # KV Secrets User
    assert_fails(validate(emu, body), "UserErrorInvalidSecret")      # the demo world has no secret yet
    put_secret(emu, "targetosskv", "targetossserver-conn", conn_string(emu))
    assert validate(emu, body)["status"] == "Succeeded"
    # Access-policy key vault: no policy for the vault -> missing permissions; add get/list -> fine.
    body_policy = db_request(emu, rp, unique(), kv="targetosskvpolicy")
    put_secret(emu, "targetosskvpolicy", "targetossserver-conn", conn_string(emu))
    assert_fails(validate(emu, body_policy), "UserErrorMissingPermissionsOnSecretStore")
    r = emu.arm("PUT", kv_id + "policy/accessPolicies/add", {"properties": {"accessPolicies": [
        {"tenantId": emu.tenant, "objectId": vault_pid, "permissions": {"secrets": ["get", "list"]}}]}},
        params={"api-version": "2023-07-01"})
    assert r.status_code == 200, r.text
    assert validate(emu, body_policy)["status"] == "Succeeded"
    # Restore as files: Storage Blob Data Contributor is needed on the account (or container).
    files = files_request(emu, rp, "demo")
    assert_fails(validate(emu, files), "UserErrorContainerNotAccessible")
    account = "/subscriptions/%s/resourceGroups/targetrg/providers/Microsoft.Storage/storageAccounts/" \
              "targetossstorage" % emu.sub
    grant(account, "ba92f5b4-2d11-453d-a403-e96b0029c9fe", "0b7a2c1e-0000-4000-8000-000000000003")
    assert validate(emu, files)["status"] == "Succeeded"


def test_one_operation_at_a_time_and_cancel(emu, rp):
    emu.set_knobs(job_duration=30)
    try:
        bi = emu.bi("empdb11")["id"]
        db = unique("first")
        r = emu.arm("POST", bi + "/restore", db_request(emu, rp, db))
        first = emu.poll_operation(r)
        assert first["status"] == "Succeeded"
        r = emu.arm("POST", bi + "/restore", db_request(emu, rp, unique("second")))
        assert_fails(emu.poll_operation(r), "UserErrorMaxConcurrentOperationLimitReached")
        guid = first["properties"]["jobId"].split("/")[-1]
        # Wait until the data is there, then cancel: the job ends Cancelled and the database is gone.
        tgt = emu.servers()["targetossserver"]
        server = pg.attach(tgt["host"], tgt["port"], tgt["admin_user"], tgt["admin_password"])
        deadline = time.time() + 30
        while not pg.database_exists(server, db) and time.time() < deadline:
            time.sleep(0.2)
        emu.control("POST", "/jobs/%s/cancel" % guid)
        job = emu.wait_job(guid)
        assert job["properties"]["status"] == "Cancelled"
        assert not pg.database_exists(server, db)
    finally:
        emu.set_knobs(job_duration=0.5)


def test_injected_job_failure(emu, rp):
    emu.control("POST", "/faults", {"kind": "job_failure", "method": "POST", "path": "/restore$", "count": 1,
                                    "code": "UserErrorServerConnectionClosed"})
    r = emu.arm("POST", emu.bi("empdb11")["id"] + "/restore", db_request(emu, rp, unique()))
    op = emu.poll_operation(r)
    assert op["status"] == "Succeeded"       # the trigger was accepted; the job fails
    job = emu.wait_job(op["properties"]["jobId"])
    assert job["properties"]["status"] == "Failed"
    err = job["properties"]["errorDetails"][0]
    assert err["code"] == "UserErrorServerConnectionClosed" and err["recommendedAction"]


# ---------------------------------------------------------------------------------------- malformed bodies

def _post(emu, action, body):
    return emu.arm("POST", emu.bi("empdb11")["id"] + "/" + action, body)


def _bad(r, text):
    assert r.status_code == 400, (r.status_code, r.text)
    err = r.json()["error"]
    assert err["code"] == "UserErrorInvalidRequestParameter", err
    assert text in err["message"], err["message"]
    assert err["additionalInfo"][0]["type"] == "UserFacingError"


def test_malformed_bodies(emu, rp):
    body = db_request(emu, rp, unique())
    wrong_case = dict(body, restoreTargetInfo=dict(body["restoreTargetInfo"], objectType="restoreTargetInfo"))
    _bad(_post(emu, "restore", wrong_case), "objectType 'restoreTargetInfo'")
    rti = dict(body["restoreTargetInfo"])
    rti["dataSourceInfo"] = rti.pop("datasourceInfo")
    _bad(_post(emu, "restore", dict(body, restoreTargetInfo=rti)), "lower-case 's'")
    _bad(_post(emu, "restore", dict(body, objectType="Nope")), "objectType 'Nope'")
    _bad(_post(emu, "restore", dict(body, objectType="AzureBackupRecoveryTimeBasedRestoreRequest")),
         "not supported")
    reh = dict(body, objectType="AzureBackupRestoreWithRehydrationRequest", sourceDataStoreType="ArchiveStore")
    _bad(_post(emu, "restore", reh), "rehydrationPriority is required")
    _bad(_post(emu, "restore", dict(reh, rehydrationPriority="High")), "rehydrationRetentionDuration is required")
    _bad(_post(emu, "restore", dict(reh, rehydrationPriority="High", rehydrationRetentionDuration="P7D")),
         "between P10D and P30D")
    _bad(_post(emu, "restore", dict(reh, rehydrationPriority="High", rehydrationRetentionDuration="7D")),
         "ISO 8601")
    _bad(_post(emu, "restore", dict(body, rehydration_priority="High")), "rehydrationPriority")
    # validateRestore: only {restoreRequestObject}; the how-to article's top-level fields are rejected.
    _bad(_post(emu, "validateRestore", {"objectType": "ValidateRestoreRequestObject", "restoreRequestObject": body}),
         "unknown properties")
    _bad(_post(emu, "validateRestore", {"restoreRequestObject": {k: v for k, v in body.items()
                                                                 if k != "recoveryPointId"},
                                        "recoveryPointId": rp}), "unknown properties")
    _bad(_post(emu, "validateRestore", body), "unknown properties")
    # A trigger body wrapped like a validate body.
    _bad(_post(emu, "restore", {"restoreRequestObject": body}), "objectType is required")
    # A secret value in the request.
    store = body["restoreTargetInfo"]["datasourceAuthCredentials"]["secretStoreResource"]
    leaky = dict(body, restoreTargetInfo=dict(body["restoreTargetInfo"], datasourceAuthCredentials={
        "objectType": "SecretStoreBasedAuthCredentials", "secretStoreResource": dict(store, value="x")}))
    _bad(_post(emu, "restore", leaky), "must not be sent")
    r = requests.post(emu.url + emu.bi("empdb11")["id"] + "/restore", params={"api-version": "2024-04-01"},
                      data=b"{not json", verify=emu.ca, headers={"Authorization": "Bearer " + emu.token(),
                                                                 "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidRequestContent"


def _retarget(emu, body, server_id, db):
    rti = dict(body["restoreTargetInfo"])
    rti["datasourceInfo"] = dict(rti["datasourceInfo"], resourceID=server_id + "/databases/" + db, resourceName=db)
    rti["datasourceSetInfo"] = dict(rti["datasourceSetInfo"], resourceID=server_id,
                                    resourceName=server_id.rsplit("/", 1)[1])
    return dict(body, restoreTargetInfo=rti)


def test_database_restore_onto_a_flexible_server(emu, rp):
    flex = emu.server_id("sourceflexserver", rg="sourcerg", kind="flexibleServers")
    body = _retarget(emu, db_request(emu, rp, "x"), flex, unique())
    assert_fails(validate(emu, body), "UserErrorRestoreAsDatabaseNotSupported")


def test_unknown_target_server(emu, rp):
    body = _retarget(emu, db_request(emu, rp, "x"), emu.server_id("nosuchserver"), unique())
    assert_fails(validate(emu, body), "UserErrorDBNotFound")

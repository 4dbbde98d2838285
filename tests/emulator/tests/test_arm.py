"""Cloud metadata, AAD endpoints, bearer tokens, ARM shapes, headers, api-versions, paging, providers."""
import time

import requests

from dpemu_helpers import API


def test_cloud_metadata_both_forms(emu):
    new = requests.get(emu.url + "/metadata/endpoints?api-version=2022-09-01", verify=emu.ca).json()
    assert isinstance(new, list) and len(new) == 1
    cloud = new[0]
    assert cloud["name"] == "AzureEmulator" and cloud["resourceManager"] == emu.url + "/"
    assert cloud["authentication"]["loginEndpoint"] == emu.url + "/"
    assert cloud["authentication"]["audiences"] == ["https://management.core.windows.net/",
                                                    "https://management.azure.com/"]
    assert cloud["suffixes"]["keyVaultDns"] and cloud["suffixes"]["storage"]
    old = requests.get(emu.url + "/metadata/endpoints?api-version=2019-05-01", verify=emu.ca).json()
    assert isinstance(old, dict) and old["resourceManager"] == emu.url + "/"


def test_openid_configuration_and_token_errors(emu):
    doc = requests.get("%s/%s/v2.0/.well-known/openid-configuration" % (emu.url, emu.tenant), verify=emu.ca).json()
    assert doc["token_endpoint"] == "%s/%s/oauth2/v2.0/token" % (emu.url, emu.tenant)
    r = requests.post(doc["token_endpoint"], verify=emu.ca, data={
        "grant_type": "client_credentials", "client_id": emu.env["AZURE_CLIENT_ID"], "client_secret": "nope",
        "scope": "https://management.azure.com/.default"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert r.json()["error_description"].startswith("AADSTS7000215: Invalid client secret provided")
    r = requests.post(doc["token_endpoint"], verify=emu.ca, data={
        "grant_type": "client_credentials", "client_id": "unknown", "client_secret": "x",
        "scope": "https://management.azure.com/.default"})
    assert r.status_code == 400 and "AADSTS700016" in r.json()["error_description"]
    ok = requests.post(doc["token_endpoint"], verify=emu.ca, data={
        "grant_type": "client_credentials", "client_id": emu.env["AZURE_CLIENT_ID"],
        "client_secret": emu.env["AZURE_SECRET"], "scope": "https://management.azure.com/.default"}).json()
    assert ok["token_type"] == "Bearer" and ok["expires_in"] > 0 and ok["access_token"]


def test_managed_identity_endpoints_need_their_headers(emu):
    r = requests.get(emu.url + "/metadata/identity/oauth2/token", verify=emu.ca,
                     params={"api-version": "2018-02-01", "resource": "https://management.azure.com"})
    assert r.status_code == 400
    r = requests.get(emu.url + "/msi/token", verify=emu.ca, headers={"X-IDENTITY-HEADER": "wrong"},
                     params={"api-version": "2019-08-01", "resource": "https://management.azure.com"})
    assert r.status_code == 401
    r = requests.get(emu.url + "/msi/token", verify=emu.ca,
                     headers={"X-IDENTITY-HEADER": emu.env["DPEMULATOR_IDENTITY_HEADER"]},
                     params={"api-version": "2019-08-01", "resource": "https://management.azure.com"})
    assert r.status_code == 200 and r.json()["expires_on"].isdigit()


def test_bearer_required_and_audience_checked(emu):
    r = requests.get(emu.url + emu.bv, params={"api-version": API}, verify=emu.ca)
    assert r.status_code == 401 and r.json()["error"]["code"] == "AuthenticationFailed"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = emu.arm("GET", emu.bv, token=emu.token("https://vault.azure.net/.default"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"
    r = emu.arm("GET", emu.bv, token="abc.def.ghi")
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_token_lifetime_knob_expires_tokens(emu):
    emu.set_knobs(token_lifetime=1)
    try:
        r = requests.post("%s/%s/oauth2/v2.0/token" % (emu.url, emu.tenant), verify=emu.ca, data={
            "grant_type": "client_credentials", "client_id": emu.env["AZURE_CLIENT_ID"],
            "client_secret": emu.env["AZURE_SECRET"], "scope": "https://management.azure.com/.default"})
        token = r.json()["access_token"]
        assert r.json()["expires_in"] == 1
        time.sleep(1.5)
        r = emu.arm("GET", emu.bv, token=token)
        assert r.status_code == 401 and r.json()["error"]["code"] == "ExpiredAuthenticationToken"
    finally:
        emu.set_knobs(token_lifetime=3600)


def test_arm_headers_and_vault_identity(emu):
    r = emu.arm("GET", emu.bv, headers={"x-ms-correlation-request-id": "corr-1"})
    assert r.status_code == 200
    for h in ("x-ms-request-id", "x-ms-correlation-request-id", "x-ms-ratelimit-remaining-subscription-reads",
              "x-ms-ratelimit-remaining-subscription-writes"):
        assert h in r.headers, h
    assert r.headers["x-ms-correlation-request-id"] == "corr-1"
    v = r.json()
    assert v["type"] == "Microsoft.DataProtection/backupVaults" and v["identity"]["principalId"]
    listed = emu.arm("GET", "/subscriptions/%s/providers/Microsoft.DataProtection/backupVaults" % emu.sub).json()
    assert [x["name"] for x in listed["value"]] == ["TestBkpVault"]


def test_backup_instances_shapes(emu):
    items = emu.arm("GET", emu.bv + "/backupInstances").json()["value"]
    single = [b for b in items if "empdb11" in b["name"]][0]
    assert single["name"].startswith("sourceossserver-empdb11-")
    props = single["properties"]
    assert "dataSourceInfo" in props and "datasourceInfo" not in props       # camel-S in a backup instance
    assert props["dataSourceInfo"]["resourceType"] == "Microsoft.DBforPostgreSQL/servers/databases"
    assert props["dataSourceSetInfo"]["resourceType"] == "Microsoft.DBforPostgreSQL/servers"
    assert props["policyInfo"]["policyId"].endswith("/backupPolicies/osspol")


def test_unknown_routes_and_api_versions(emu):
    r = emu.arm("GET", emu.bv + "/nosuchthings")
    assert r.status_code == 404 and r.json()["error"]["code"] in ("InvalidResourceType", "ResourceNotFound")
    r = emu.arm("GET", "/subscriptions/%s/resourceGroups/testBkpVaultRG/providers/Microsoft.Nope/things/x" % emu.sub)
    assert r.status_code == 404 and r.json()["error"]["code"] == "InvalidResourceType"
    r = emu.arm("GET", emu.bv, params={"api-version": "2019-01-01"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "NoRegisteredProviderFound"
    r = emu.arm("GET", emu.bv, params={"api-version": "latest"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidApiVersionParameter"
    for version in ("2021-07-01", "2023-05-01", "2024-04-01", "2025-09-01", "2026-06-01"):
        assert emu.arm("GET", emu.bv, params={"api-version": version}).status_code == 200, version
    r = emu.arm("GET", emu.bv.replace("TestBkpVault", "NoVault"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "ResourceNotFound"
    r = emu.arm("GET", "/subscriptions/%s/resourceGroups/nosuchrg/providers/Microsoft.DataProtection/"
                       "backupVaults/x" % emu.sub)
    assert r.status_code == 404 and r.json()["error"]["code"] == "ResourceGroupNotFound"


def test_recovery_point_paging_and_filter(emu):
    bi = emu.bi("empdb11")
    emu.control("POST", "/seed-points", {"backup_instance": bi["id"], "count": 8, "interval_hours": 1})
    url, seen, pages = bi["id"] + "/recoveryPoints", [], 0
    r = emu.arm("GET", url)
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["value"]) <= 5
        seen += body["value"]
        pages += 1
        if not body.get("nextLink"):
            break
        assert "$skipToken=" in body["nextLink"] and body["nextLink"].startswith(emu.url)
        r = emu.arm("GET", body["nextLink"])             # verbatim
    assert pages >= 2 and len({p["name"] for p in seen}) == len(seen)
    p = seen[0]
    assert p["properties"]["objectType"] == "AzureBackupDiscreteRecoveryPoint"
    store = p["properties"]["recoveryPointDataStoresDetails"][0]
    assert store["type"] == "VaultStore" and store["state"] == "COMMITTED"
    got = emu.arm("GET", url + "/" + p["name"])
    assert got.status_code == 200 and got.json()["id"] == p["id"]
    assert emu.arm("GET", url + "/" + "f" * 32).status_code == 404
    r = emu.arm("GET", url, params={"api-version": API, "$filter": "startDate eq '2000-01-01T00:00:00.0000000Z' and "
                                                                   "endDate eq '2000-01-02T00:00:00.0000000Z'"})
    assert r.status_code == 200 and r.json()["value"] == []
    r = emu.arm("GET", url, params={"api-version": API, "$filter": "color eq 'red'"})
    assert r.status_code == 400


def test_postgres_and_storage_resources(emu):
    srv = emu.arm("GET", emu.server_id("targetossserver"), params={"api-version": "2017-12-01"}).json()
    assert srv["properties"]["version"] == "11" and srv["properties"]["fullyQualifiedDomainName"] == \
        "targetossserver.postgres.database.azure.com"
    dbs = emu.arm("GET", emu.server_id("sourceossserver", rg="sourcerg") + "/databases",
                  params={"api-version": "2017-12-01"}).json()["value"]
    assert "empdb11" in [d["name"] for d in dbs]
    fw = emu.arm("GET", emu.server_id("targetossserver") + "/firewallRules", params={"api-version": "2017-12-01"})
    assert fw.json()["value"][0]["name"] == "AllowAllWindowsAzureIps"
    flex = emu.arm("GET", emu.server_id("sourceflexserver", rg="sourcerg", kind="flexibleServers"),
                   params={"api-version": "2022-12-01"})
    assert flex.status_code == 200 and flex.json()["properties"]["version"] == "14"
    fdbs = emu.arm("GET", emu.server_id("sourceflexserver", rg="sourcerg", kind="flexibleServers") + "/databases",
                   params={"api-version": "2022-12-01"}).json()["value"]
    assert {"inventory", "orders"} <= {d["name"] for d in fdbs}
    acct = emu.arm("GET", "/subscriptions/%s/resourceGroups/targetrg/providers/Microsoft.Storage/storageAccounts/"
                          "targetossstorage" % emu.sub, params={"api-version": "2023-01-01"}).json()
    assert acct["properties"]["primaryEndpoints"]["blob"] == emu.url + "/blob/targetossstorage/"
    kv = emu.arm("GET", "/subscriptions/%s/resourceGroups/targetrg/providers/Microsoft.KeyVault/vaults/targetosskv"
                        % emu.sub, params={"api-version": "2023-07-01"}).json()
    assert kv["properties"]["vaultUri"] == emu.url + "/keyvaults/targetosskv/"
    assert kv["properties"]["enableRbacAuthorization"] is True and kv["properties"]["networkAcls"]["bypass"]


def test_reader_principal_cannot_restore(emu):
    token = emu.token(client_id="5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a803", secret="emu-readonly-secret-Lm3")
    assert emu.arm("GET", emu.bv, token=token).status_code == 200
    r = emu.arm("POST", emu.bi("empdb11")["id"] + "/restore", {}, token=token)
    assert r.status_code == 403 and r.json()["error"]["code"] == "AuthorizationFailed"


def test_backup_jobs_list_paged(emu):
    r = emu.arm("GET", emu.bv + "/backupJobs")
    assert r.status_code == 200
    body = r.json()
    assert len(body["value"]) <= 5
    if body.get("nextLink"):
        assert emu.arm("GET", body["nextLink"]).status_code == 200
    for j in body["value"]:
        assert j["type"] == "Microsoft.DataProtection/Backupvaults/backupJobs"
        assert "dataTransferedInBytes" in j["properties"]["extendedInfo"]

"""The official SDK (azure-mgmt-dataprotection, api-version 2026-06-01) and azure-identity as clients."""
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import ClientSecretCredential, ManagedIdentityCredential
from azure.mgmt.dataprotection import DataProtectionMgmtClient

from dpemu_helpers import VAULT, VAULT_RG, db_request, unique


def credential(emu, secret=None, client_id=None):
    return ClientSecretCredential(emu.tenant, client_id or emu.env["AZURE_CLIENT_ID"],
                                  secret or emu.env["AZURE_SECRET"], authority=emu.url,
                                  disable_instance_discovery=True, connection_verify=emu.ca)


def client(emu, cred=None):
    return DataProtectionMgmtClient(cred or credential(emu), emu.sub, base_url=emu.url, connection_verify=emu.ca)


def test_sdk_lists_points_paged_validates_restores_and_reads_job(emu):
    bi = emu.bi("empdb11")
    emu.control("POST", "/seed-points", {"backup_instance": bi["id"], "count": 12})
    c = client(emu)
    pages = list(c.recovery_points.list(VAULT_RG, VAULT, bi["name"]).by_page())
    points = [p for page in pages for p in page]
    assert len(pages) >= 3 and len(points) >= 13        # page_size 5: the SDK followed nextLink
    assert len({p.name for p in points}) == len(points)
    rp = max(points, key=lambda p: p.properties.recovery_point_time)
    db = unique("sdk")
    body = db_request(emu, rp.name, db)
    poller = c.backup_instances.begin_validate_for_restore(VAULT_RG, VAULT, bi["name"],
                                                           {"restoreRequestObject": body}, polling_interval=0.2)
    assert poller.result().object_type == "OperationJobExtendedInfo"
    poller = c.backup_instances.begin_trigger_restore(VAULT_RG, VAULT, bi["name"], body, polling_interval=0.2)
    result = poller.result()
    assert result.job_id.startswith("/subscriptions/%s/resourceGroups/%s/" % (emu.sub, VAULT_RG))
    emu.wait_job(result.job_id)
    job = c.jobs.get(VAULT_RG, VAULT, result.job_id.split("/")[-1])
    assert job.properties.status == "Completed"
    assert job.properties.operation_category == "Restore"
    assert job.properties.extended_info.source_recover_point.recovery_point_id == rp.name
    assert any(j.name == job.name for j in c.jobs.list(VAULT_RG, VAULT))


def test_sdk_failed_validation_raises_with_code(emu):
    c = client(emu)
    bi = emu.bi("empdb11")
    rp = emu.latest_point()["name"]
    poller = c.backup_instances.begin_validate_for_restore(
        VAULT_RG, VAULT, bi["name"], {"restoreRequestObject": db_request(emu, rp, "postgres")}, polling_interval=0.2)
    with pytest.raises(HttpResponseError) as err:
        poller.result()
    assert "UserErrorDatabaseNameAlreadyInUse" in str(err.value)


def test_sdk_vault_and_time_filter(emu):
    c = client(emu)
    vault = c.backup_vaults.get(VAULT_RG, VAULT)
    assert vault.identity.principal_id and vault.identity.type == "SystemAssigned"
    bi = emu.bi("empdb11")
    everything = list(c.recovery_points.list(VAULT_RG, VAULT, bi["name"]))
    times = sorted(p.properties.recovery_point_time for p in everything)
    start, end = times[1], times[-2]
    fmt = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")  # noqa: E731  (the CLI's 7-digit format)
    window = list(c.recovery_points.list(VAULT_RG, VAULT, bi["name"],
                                         filter="startDate eq '%s' and endDate eq '%s'" % (fmt(start), fmt(end))))
    assert len(window) == sum(1 for t in times if start <= t <= end) and 0 < len(window) < len(everything)


def test_wrong_client_secret_is_aadsts7000215(emu):
    with pytest.raises(ClientAuthenticationError) as err:
        credential(emu, secret="not-the-secret").get_token("https://management.azure.com/.default")
    assert "AADSTS7000215" in str(err.value)
    with pytest.raises(ClientAuthenticationError) as err:
        credential(emu, client_id="00000000-0000-0000-0000-000000000000").get_token(
            "https://management.azure.com/.default")
    assert "AADSTS700016" in str(err.value)


def test_managed_identity_app_service_style(emu, monkeypatch):
    monkeypatch.setenv("IDENTITY_ENDPOINT", emu.env["DPEMULATOR_IDENTITY_ENDPOINT"])
    monkeypatch.setenv("IDENTITY_HEADER", emu.env["DPEMULATOR_IDENTITY_HEADER"])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca)
    for var in ("MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "AZURE_POD_IDENTITY_AUTHORITY_HOST"):
        monkeypatch.delenv(var, raising=False)
    cred = ManagedIdentityCredential(connection_verify=emu.ca)
    c = client(emu, cred)
    assert c.backup_vaults.get(VAULT_RG, VAULT).name == VAULT


def test_managed_identity_imds_style(emu, monkeypatch):
    for var in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca)
    cred = ManagedIdentityCredential(connection_verify=emu.ca)
    token = cred.get_token("https://management.azure.com/.default")
    r = emu.arm("GET", emu.bv, token=token.token)
    assert r.status_code == 200, r.text

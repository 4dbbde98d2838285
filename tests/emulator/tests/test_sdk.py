"""The official SDK (azure-mgmt-dataprotection, api-version 2026-06-01) and azure-identity as clients."""
from urllib.parse import urlsplit

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import ClientSecretCredential, ManagedIdentityCredential, UsernamePasswordCredential
from azure.mgmt.dataprotection import DataProtectionMgmtClient

from dpemu_helpers import VAULT, VAULT_RG, db_request, unique

# The Azure CLI's public client id: what azure.azcollection (and the collection) sign a user in with.
CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
ARM_SCOPE = "https://management.azure.com/.default"
# MSAL deprecates the password grant for public clients (no MFA); it is still what AWX's user credential injects.
password_grant = pytest.mark.filterwarnings(
    "ignore:(UsernamePasswordCredential is|This API has been) deprecated:DeprecationWarning")


def credential(emu, secret=None, client_id=None):
    return ClientSecretCredential(emu.tenant, client_id or emu.env["AZURE_CLIENT_ID"],
                                  secret or emu.env["AZURE_SECRET"], authority=emu.url,
                                  disable_instance_discovery=True, connection_verify=emu.ca)


@pytest.fixture()
def realm_on_port(emu, monkeypatch):
    """MSAL sends its user realm discovery (the first request of a password sign-in) to https://<host>/common/userrealm
    WITHOUT the authority's port (msal.authority.Authority.user_realm_discovery), where nothing answers for an
    authority on another port than 443, as the emulator's. Tell MSAL what it concludes itself from a 404 there: the
    host has no user realm endpoint (plain password grant). The emulator serves the endpoint on its own port too."""
    from msal.authority import Authority  # pylint: disable=import-outside-toplevel
    monkeypatch.setattr(Authority, "_domains_without_user_realm_discovery", {urlsplit(emu.url).hostname})


def user_credential(emu, password=None, username=None, tenant=None):
    return UsernamePasswordCredential(CLI_CLIENT_ID, username or emu.env["DPEMULATOR_AD_USER"],
                                      password or emu.env["DPEMULATOR_AD_PASSWORD"], tenant_id=tenant or emu.tenant,
                                      authority=emu.url, disable_instance_discovery=True, connection_verify=emu.ca)


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


@password_grant
def test_user_password_credential_signs_in(emu, realm_on_port):
    """The resource-owner password grant, as azure-identity sends it (user realm discovery first, then the token
    request with offline_access): a token for the user, usable on ARM."""
    for tenant in (emu.tenant, "organizations"):
        c = client(emu, user_credential(emu, tenant=tenant))
        assert c.backup_vaults.get(VAULT_RG, VAULT).name == VAULT


@password_grant
def test_user_can_do_what_the_automation_principal_does(emu, realm_on_port):
    """The demo user holds the automation principal's role assignments and access policies: every call answers
    the same for both (control plane, Key Vault RBAC and access-policy data planes, blob data plane)."""
    user, sp = user_credential(emu), credential(emu)
    rp = emu.latest_point()["name"]
    bi = emu.bi("empdb11")["id"]
    kv, blob = ("https://vault.azure.net/.default", {"api-version": "7.4"}), ("https://storage.azure.com/.default", {
        "restype": "container", "comp": "list"})
    calls = [("GET", emu.bv, None, ARM_SCOPE, None),
             ("POST", bi + "/validateRestore", {"restoreRequestObject": db_request(emu, rp, unique("user"))},
              ARM_SCOPE, None),
             ("GET", "/subscriptions/%s/providers/Microsoft.Authorization/roleAssignments" % emu.sub, None, ARM_SCOPE,
              {"api-version": "2022-04-01"}),
             ("GET", "/keyvaults/targetosskv/secrets/targetossserver-conn", None) + kv,
             ("GET", "/keyvaults/targetosskvpolicy/secrets/targetossserver-conn", None) + kv,
             ("GET", "/blob/targetossstorage/restored-files", None) + blob]
    for method, path, body, scope, params in calls:
        answers = [emu.arm(method, path, body, params=params, headers={"x-ms-version": "2021-08-06"},
                           token=cred.get_token(scope).token).status_code for cred in (sp, user)]
        assert answers[0] == answers[1] and answers[0] < 300, (method, path, answers)


@password_grant
def test_wrong_password_or_user_is_refused_as_aad_does(emu, realm_on_port):
    with pytest.raises(ClientAuthenticationError) as err:
        user_credential(emu, password="not-the-password").get_token(ARM_SCOPE)
    assert "AADSTS50126" in str(err.value) and "invalid username or password" in str(err.value)
    assert "not-the-password" not in str(err.value)
    with pytest.raises(ClientAuthenticationError) as err:
        user_credential(emu, username="nobody@emulator.example").get_token(ARM_SCOPE)
    assert "AADSTS50034" in str(err.value)


def test_password_grant_answers_and_refresh_token(emu):
    """The raw exchange: user realm (Managed), the token answer (access, refresh and id token, client_info), and
    a refresh_token grant that gives a new access token for the same user."""
    realm = requests.get("%s/common/userrealm/%s" % (emu.url, emu.env["DPEMULATOR_AD_USER"]),
                         params={"api-version": "1.0"}, verify=emu.ca).json()
    assert realm["account_type"] == "Managed"
    token_url = "%s/%s/oauth2/v2.0/token" % (emu.url, emu.tenant)
    form = {"grant_type": "password", "client_id": CLI_CLIENT_ID, "username": emu.env["DPEMULATOR_AD_USER"],
            "password": emu.env["DPEMULATOR_AD_PASSWORD"], "scope": ARM_SCOPE + " offline_access openid profile",
            "client_info": "1"}
    answer = requests.post(token_url, data=form, verify=emu.ca).json()
    assert {"access_token", "refresh_token", "id_token", "client_info"} <= set(answer), answer.keys()
    assert emu.arm("GET", emu.bv, token=answer["access_token"]).status_code == 200
    refreshed = requests.post(token_url, verify=emu.ca, data={
        "grant_type": "refresh_token", "client_id": CLI_CLIENT_ID, "refresh_token": answer["refresh_token"],
        "scope": ARM_SCOPE}).json()
    assert emu.arm("GET", emu.bv, token=refreshed["access_token"]).status_code == 200
    unknown_client = requests.post(token_url, data=dict(form, client_id="00000000-0000-0000-0000-000000000000"),
                                   verify=emu.ca)
    assert unknown_client.status_code == 400 and "AADSTS700016" in unknown_client.text
    forged = requests.post(token_url, verify=emu.ca, data={"grant_type": "refresh_token", "client_id": CLI_CLIENT_ID,
                                                            "refresh_token": answer["access_token"],
                                                            "scope": ARM_SCOPE})
    assert forged.status_code == 400 and "AADSTS9002313" in forged.text


def test_env_sh_names_the_service_principal_only(emu):
    """The user is for tests of the password grant (env.json); env.sh, which users source, keeps the service
    principal as the one credential, so that the collection and the SDK sign in as before."""
    with open(emu.state + "/env.sh") as fh:
        env_sh = fh.read()
    assert "export AZURE_CLIENT_ID=" in env_sh and "export AZURE_SECRET=" in env_sh
    assert "AZURE_AD_USER" not in env_sh and "AZURE_PASSWORD" not in env_sh
    assert emu.env["DPEMULATOR_AD_USER"] not in env_sh and emu.env["DPEMULATOR_AD_PASSWORD"] not in env_sh

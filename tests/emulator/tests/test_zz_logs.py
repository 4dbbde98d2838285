"""No secret value, client secret, token, password or Authorization header ever reaches the log."""
import os
import uuid

import requests

from dpemulator import postgres as pg

from dpemu_helpers import db_request, unique


def test_secret_sentinels_never_logged(emu):
    sentinel_value = "SENTINEL-value-%s" % uuid.uuid4().hex
    sentinel_pw = "SENTINELpw%s" % uuid.uuid4().hex[:12]
    kv_tok = emu.token("https://vault.azure.net/.default")
    for name, value in (("sentinel-plain", sentinel_value),
                        ("sentinel-conn", pg.build_ado_connection_string(
                            "targetossserver.postgres.database.azure.com", 5432, "postgres",
                            "pgadmin@targetossserver", sentinel_pw))):
        r = requests.put(emu.url + "/keyvaults/targetosskv/secrets/" + name, params={"api-version": "7.4"},
                         json={"value": value}, verify=emu.ca, headers={"Authorization": "Bearer " + kv_tok})
        assert r.status_code == 200
        assert requests.get(emu.url + "/keyvaults/targetosskv/secrets/" + name, params={"api-version": "7.4"},
                            verify=emu.ca, headers={"Authorization": "Bearer " + kv_tok}).json()["value"] == value
    # A restore whose secret holds the (wrong) sentinel password fails at login: the error path too.
    rp = emu.latest_point()["name"]
    r = emu.arm("POST", emu.bi("empdb11")["id"] + "/validateRestore",
                {"restoreRequestObject": db_request(emu, rp, unique(), secret="sentinel-conn")})
    assert emu.poll_operation(r)["error"]["code"] == "UserErrorDBUserAuthFailed"
    # A failed client-secret login with a sentinel secret.
    bad_secret = "SENTINEL-client-%s" % uuid.uuid4().hex
    requests.post("%s/%s/oauth2/v2.0/token" % (emu.url, emu.tenant), verify=emu.ca, data={
        "grant_type": "client_credentials", "client_id": emu.env["AZURE_CLIENT_ID"], "client_secret": bad_secret,
        "scope": "https://management.azure.com/.default"})
    with open(os.path.join(emu.state, "emulator.log"), errors="replace") as fh:
        log = fh.read()
    assert "GET /keyvaults/targetosskv/secrets/sentinel-plain 200" in log       # the access log works
    servers = emu.servers()
    for secret in [sentinel_value, sentinel_pw, bad_secret, emu.env["AZURE_SECRET"], kv_tok, emu.token(),
                   emu.env["DPEMULATOR_CONTROL_TOKEN"], emu.env["DPEMULATOR_IDENTITY_HEADER"], "Bearer "] + \
            [s["admin_password"] for s in servers.values()]:
        assert secret not in log, "a secret reached the log"

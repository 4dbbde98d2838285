"""Role definitions and assignments (scope inheritance, 409), Key Vault resource + data plane,
blob data plane."""
import uuid

import requests

KV_SCOPE = "https://vault.azure.net/.default"
ST_SCOPE = "https://storage.azure.com/.default"
AUTHZ = "/providers/Microsoft.Authorization"
V = {"api-version": "2022-04-01"}


def test_role_definitions_by_name_and_id(emu):
    scope = "/subscriptions/%s" % emu.sub
    expected = {"Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
                "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
                "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
                "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
                "Backup Operator": "00c29273-979b-4161-815c-10b084fb9324",
                "User Access Administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"}
    for name, guid in expected.items():
        r = emu.arm("GET", scope + AUTHZ + "/roleDefinitions", params=dict(V, **{"$filter": "roleName eq '%s'" % name}))
        items = r.json()["value"]
        assert len(items) == 1 and items[0]["name"] == guid, name
        assert items[0]["id"] == "%s%s/roleDefinitions/%s" % (scope, AUTHZ, guid)
        assert emu.arm("GET", items[0]["id"], params=V).json()["properties"]["roleName"] == name


def test_role_assignment_lifecycle_and_inheritance(emu):
    pid = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d03"        # 'readonly' principal of the world
    rg = "/subscriptions/%s/resourceGroups/targetrg" % emu.sub
    server = rg + "/providers/Microsoft.DBforPostgreSQL/servers/targetossserver"
    role = "/subscriptions/%s%s/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe" % (emu.sub, AUTHZ)
    name = str(uuid.uuid4())
    body = {"properties": {"roleDefinitionId": role, "principalId": pid, "principalType": "ServicePrincipal"}}
    r = emu.arm("PUT", rg + AUTHZ + "/roleAssignments/" + name, body, params=V)
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["scope"] == rg
    dup = emu.arm("PUT", rg + AUTHZ + "/roleAssignments/" + str(uuid.uuid4()), body, params=V)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "RoleAssignmentExists"
    # Inherited at the server below the RG: atScope() there lists it; a sibling RG does not.
    r = emu.arm("GET", server + AUTHZ + "/roleAssignments", params=dict(V, **{"$filter": "atScope()"}))
    assert name in [a["name"] for a in r.json()["value"]]
    r = emu.arm("GET", "/subscriptions/%s/resourceGroups/sourcerg%s/roleAssignments" % (emu.sub, AUTHZ),
                params=dict(V, **{"$filter": "atScope() and principalId eq '%s'" % pid}))
    assert name not in [a["name"] for a in r.json()["value"]]
    r = emu.arm("GET", "/subscriptions/%s%s/roleAssignments" % (emu.sub, AUTHZ),
                params=dict(V, **{"$filter": "principalId eq '%s'" % pid}))
    assert name in [a["name"] for a in r.json()["value"]]
    assert emu.arm("GET", rg + AUTHZ + "/roleAssignments/" + name, params=V).status_code == 200
    assert emu.arm("DELETE", rg + AUTHZ + "/roleAssignments/" + name, params=V).status_code == 200
    assert emu.arm("GET", rg + AUTHZ + "/roleAssignments/" + name, params=V).status_code == 404
    bad = emu.arm("PUT", rg + AUTHZ + "/roleAssignments/" + str(uuid.uuid4()),
                  {"properties": {"roleDefinitionId": role, "principalId": str(uuid.uuid4())}}, params=V)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "PrincipalNotFound"


def test_reader_cannot_assign_roles(emu):
    token = emu.token(client_id="5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a803", secret="emu-readonly-secret-Lm3")
    r = emu.arm("PUT", "/subscriptions/%s%s/roleAssignments/%s" % (emu.sub, AUTHZ, uuid.uuid4()),
                {"properties": {"roleDefinitionId": "/subscriptions/%s%s/roleDefinitions/acdd72a7-3385-48ef-bd42-"
                                "f606fba81ae7" % (emu.sub, AUTHZ), "principalId": "2b3c4d5e-6f7a-4b8c-9d0e-"
                                "1f2a3b4c5d03"}}, params=V, token=token)
    assert r.status_code == 403 and r.json()["error"]["code"] == "AuthorizationFailed"


def _kv(emu, method, path, token=None, **kw):
    headers = {"Authorization": "Bearer " + token} if token else {}
    return requests.request(method, "%s/keyvaults/%s" % (emu.url, path), params={"api-version": "7.4"},
                            headers=headers, verify=emu.ca, **kw)


def test_key_vault_data_plane(emu):
    r = _kv(emu, "GET", "targetosskv/secrets/x")
    assert r.status_code == 401 and 'resource="https://vault.azure.net"' in r.headers["WWW-Authenticate"]
    tok = emu.token(KV_SCOPE)
    v1 = _kv(emu, "PUT", "targetosskv/secrets/kvtest", tok, json={"value": "one"}).json()
    v2 = _kv(emu, "PUT", "targetosskv/secrets/kvtest", tok, json={"value": "two"}).json()
    assert v1["id"] != v2["id"] and v2["id"].startswith(emu.url + "/keyvaults/targetosskv/secrets/kvtest/")
    assert _kv(emu, "GET", "targetosskv/secrets/kvtest", tok).json()["value"] == "two"
    assert _kv(emu, "GET", "targetosskv/secrets/kvtest/" + v1["id"].rsplit("/", 1)[1], tok).json()["value"] == "one"
    versions = _kv(emu, "GET", "targetosskv/secrets/kvtest/versions", tok).json()["value"]
    assert len(versions) == 2 and all("value" not in v for v in versions)
    missing = _kv(emu, "GET", "targetosskv/secrets/nosuch", tok)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "SecretNotFound"
    assert _kv(emu, "DELETE", "targetosskv/secrets/kvtest", tok).json()["recoveryId"]
    assert _kv(emu, "GET", "targetosskv/secrets/kvtest", tok).status_code == 404
    # A Reader has no data access (RBAC model: ForbiddenByRbac; policy model: AccessDenied).
    reader = emu.token(KV_SCOPE, client_id="5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a803", secret="emu-readonly-secret-Lm3")
    r = _kv(emu, "GET", "targetosskv/secrets/targetossserver-conn", reader)
    assert r.status_code == 403 and r.json()["error"]["innererror"]["code"] == "ForbiddenByRbac"
    r = _kv(emu, "GET", "targetosskvpolicy/secrets/targetossserver-conn", reader)
    assert r.status_code == 403 and r.json()["error"]["innererror"]["code"] == "AccessDenied"
    assert _kv(emu, "GET", "targetosskvpolicy/secrets/targetossserver-conn", tok).status_code == 200
    # A management token is the wrong audience for the data plane.
    assert _kv(emu, "GET", "targetosskv/secrets/targetossserver-conn", emu.token()).status_code == 401


def test_access_policies_add_replace_remove(emu):
    kv = "/subscriptions/%s/resourceGroups/targetrg/providers/Microsoft.KeyVault/vaults/targetosskvpolicy" % emu.sub
    oid = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d03"
    api = {"api-version": "2023-07-01"}

    def change(op, secrets):
        r = emu.arm("PUT", kv + "/accessPolicies/" + op, {"properties": {"accessPolicies": [
            {"tenantId": emu.tenant, "objectId": oid, "permissions": {"secrets": secrets}}]}}, params=api)
        assert r.status_code == 200, r.text
        return [p for p in r.json()["properties"]["accessPolicies"] if p["objectId"] == oid]

    assert change("add", ["get"])[0]["permissions"]["secrets"] == ["get"]
    assert change("add", ["list"])[0]["permissions"]["secrets"] == ["get", "list"]
    assert change("replace", ["set"])[0]["permissions"]["secrets"] == ["set"]
    assert change("remove", ["set"]) == []
    got = emu.arm("GET", kv, params=api).json()
    assert got["properties"]["enableRbacAuthorization"] is False


def test_blob_data_plane(emu):
    base = "%s/blob/targetossstorage/restored-files" % emu.url
    tok = emu.token(ST_SCOPE)
    hdr = {"Authorization": "Bearer " + tok, "x-ms-version": "2023-11-03"}
    r = requests.put(base + "/dir/hello.txt", data=b"hello", verify=emu.ca,
                     headers=dict(hdr, **{"x-ms-blob-type": "BlockBlob"}))
    assert r.status_code == 201, r.text
    assert requests.get(base + "/dir/hello.txt", headers=hdr, verify=emu.ca).content == b"hello"
    head = requests.head(base + "/dir/hello.txt", headers=hdr, verify=emu.ca)
    assert head.status_code == 200 and head.headers["Content-Length"] == "5"
    listing = requests.get(base, params={"restype": "container", "comp": "list", "prefix": "dir/"}, headers=hdr,
                           verify=emu.ca)
    assert "<Name>dir/hello.txt</Name>" in listing.text and listing.text.startswith("<?xml")
    assert requests.get(base + "/nope", headers=hdr, verify=emu.ca).headers["x-ms-error-code"] == "BlobNotFound"
    assert requests.get(base + "/dir/hello.txt", verify=emu.ca).status_code == 401
    reader = emu.token(ST_SCOPE, client_id="5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a803", secret="emu-readonly-secret-Lm3")
    r = requests.get(base + "/dir/hello.txt", headers=dict(hdr, Authorization="Bearer " + reader), verify=emu.ca)
    assert r.status_code == 403 and r.headers["x-ms-error-code"] == "AuthorizationPermissionMismatch"

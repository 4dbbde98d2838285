"""Cloud metadata, Azure AD (client credentials, resource-owner password, refresh token) and managed-identity
token endpoints.

What azure-identity/MSAL send and expect is in reference/toolchain.md §4; error texts follow AAD's
(AADSTS codes) so that ClientAuthenticationError messages look like the real ones.
"""
import re
import time
import uuid
from urllib.parse import parse_qs

from .errors import ApiError
from .server import AAD, META, json_response
from .tokens import REFRESH_AUDIENCE, TokenError, client_info


def _aad_error(status, error, code, text, tenant):
    trace = str(uuid.uuid4())
    desc = "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s" % (
        code, text, trace, uuid.uuid4(), time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()))
    return json_response({"error": error, "error_description": desc, "error_codes": [code],
                          "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()), "trace_id": trace,
                          "correlation_id": str(uuid.uuid4()),
                          "error_uri": "%s/error?code=%d" % (tenant, code)}, status)


class AadProvider:
    def __init__(self, app):
        self.app = app

    def register(self, r):
        r.add("GET", r"/metadata/endpoints", self.metadata, META, "metadata.endpoints")
        r.add("GET", r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration", self.openid, AAD, "aad.openid")
        r.add("GET", r"/(?P<tenant>[^/]+)/\.well-known/openid-configuration", self.openid_v1, AAD, "aad.openid_v1")
        r.add("GET", r"/common/discovery/instance", self.discovery, AAD, "aad.discovery")
        r.add("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", self.token_v2, AAD, "aad.token")
        r.add("POST", r"/(?P<tenant>[^/]+)/oauth2/token", self.token_v1, AAD, "aad.token_v1")
        r.add("GET", r"/common/userrealm/(?P<username>[^/]+)", self.user_realm, AAD, "aad.userrealm")
        r.add("GET", r"/msi/token", self.msi_app_service, AAD, "mi.app_service")
        r.add("GET", r"/metadata/identity/oauth2/token", self.msi_imds, AAD, "mi.imds")

    # ------------------------------------------------------------------------------------ metadata
    def cloud(self):
        base = self.app.base_url
        w = self.app.world
        return {
            "portal": base + "/portal", "name": w.cloud_name,
            "authentication": {"loginEndpoint": base + "/",
                               "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
                               "tenant": "common", "identityProvider": "AAD"},
            "media": base + "/", "graphAudience": "https://graph.windows.net/", "graph": base + "/graph/",
            "batch": "https://batch.core.windows.net/", "resourceManager": base + "/",
            "sqlManagement": "https://management.core.windows.net:8443/",
            "gallery": base + "/gallery/", "activeDirectoryDataLake": "https://datalake.azure.net/",
            "microsoftGraphResourceId": base + "/graph/",
            "vmImageAliasDoc": base + "/vmImageAliasDoc",
            "suffixes": {"keyVaultDns": "vault.azure.net", "storage": "core.windows.net",
                         "sqlServerHostname": "database.windows.net", "acrLoginServer": "azurecr.io",
                         "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
                         "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
                         "mhsmDns": "managedhsm.azure.net", "postgresqlServerEndpoint": "postgres.database.azure.com",
                         "mysqlServerEndpoint": "mysql.database.azure.com", "storageSyncEndpointSuffix": "afs.azure.net"},
            "dpemulator": {"keyVaultBaseUrl": base + "/keyvaults/", "blobBaseUrl": base + "/blob/",
                           "tenantId": w.tenant_id},
        }

    def metadata(self, req):
        # 2022-09-01 answers a list of clouds; older api-versions (and none) a single object.
        version = req.q("api-version") or ""
        if version >= "2022-09-01":
            return json_response([self.cloud()])
        return json_response(self.cloud())

    # ------------------------------------------------------------------------------------ AAD
    def _openid_doc(self, tenant, v2=True):
        base = "%s/%s" % (self.app.base_url, tenant)
        suffix = "/v2.0" if v2 else ""
        return {"token_endpoint": "%s/oauth2%s/token" % (base, suffix),
                "authorization_endpoint": "%s/oauth2%s/authorize" % (base, suffix),
                "device_authorization_endpoint": "%s/oauth2%s/devicecode" % (base, suffix),
                "issuer": "https://sts.windows.net/%s/" % self.app.world.tenant_id if not v2 else
                          "%s/%s/v2.0" % (self.app.base_url, self.app.world.tenant_id),
                "jwks_uri": "%s/discovery%s/keys" % (base, suffix),
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                          "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "tenant_region_scope": "EU", "cloud_instance_name": "emulator", "cloud_graph_host_name": "graph",
                "msgraph_host": "graph", "end_session_endpoint": "%s/oauth2%s/logout" % (base, suffix)}

    def _check_tenant(self, tenant):
        if tenant.lower() not in (self.app.world.tenant_id.lower(), "organizations", "common"):
            raise ApiError(400, "invalid_request", "AADSTS90002: Tenant '%s' not found. Check to make sure you "
                           "have the correct tenant ID and are signing into the correct cloud." % tenant)

    def openid(self, req, tenant):
        self._check_tenant(tenant)
        return json_response(self._openid_doc(tenant))

    def openid_v1(self, req, tenant):
        self._check_tenant(tenant)
        return json_response(self._openid_doc(tenant, v2=False))

    def discovery(self, req):
        # MSAL asks this only without disable_instance_discovery; answer as the real endpoint would.
        host = self.app.base_url.split("://", 1)[1]
        m = re.match(r"^https?://[^/]+/([^/]+)/", req.q("authorization_endpoint") or "")
        tenant = m.group(1) if m else "common"
        return json_response({
            "tenant_discovery_endpoint": "%s/%s/v2.0/.well-known/openid-configuration" % (self.app.base_url, tenant),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]})

    # ------------------------------------------------------------------------------------ token endpoint
    def token_v2(self, req, tenant):
        return self._token(req, tenant, _v2_resource)

    def token_v1(self, req, tenant):
        return self._token(req, tenant, lambda form: form.get("resource"))

    def _token(self, req, tenant, resource_from):
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        grant = _TokenGrant(self.app, form, tenant, resource_from)
        handler = {"client_credentials": grant.client_credentials, "password": grant.password,
                   "refresh_token": grant.refresh_token}.get(form.get("grant_type"))
        if handler is None:
            return grant.error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type "
                               "'%s'." % form.get("grant_type", ""))
        try:
            return handler()
        except _GrantRefused as refused:
            return refused.response

    def user_realm(self, req, username):
        """Home realm discovery, which MSAL asks before a password grant: the world's users are cloud-only
        (Managed: MSAL then posts the password to the token endpoint, no WS-Trust federation)."""
        user = self.app.world.users.get(username.lower())
        domain = username.rpartition("@")[2]
        return json_response({"ver": "1.0", "account_type": "Managed" if user else "Unknown",
                              "domain_name": domain, "cloud_instance_name": "emulator",
                              "cloud_audience_urn": "urn:federation:MicrosoftOnline"})

    # ------------------------------------------------------------------------------------ managed identity
    def _mi_principal(self, req):
        world = self.app.world
        wanted = req.q("client_id") or req.q("principal_id") or req.q("object_id") or req.q("mi_res_id") or \
            req.q("msi_res_id")
        if wanted:
            for p in world.principals.values():
                if p.get("managed_identity") and wanted.lower() in (
                        p["client_id"], p["object_id"], str(p.get("resource_id") or "").lower()):
                    return p
            raise ApiError(400, "invalid_request", "Identity not found")
        if world.mi_principal is None:
            raise ApiError(400, "invalid_request", "No managed identity is assigned to this resource "
                           "(the world file has no managed_identity).")
        return world.mi_principal

    def _mi_token(self, req, principal):
        resource = req.q("resource")
        if not resource:
            raise ApiError(400, "invalid_request", "Required query variable 'resource' is missing")
        lifetime = int(self.app.state.knobs["token_lifetime"])
        token, exp = self.app.tokens.issue(principal, resource, lifetime)
        return token, exp, lifetime, resource

    def msi_app_service(self, req):
        header = req.headers.get("X-IDENTITY-HEADER")
        if header != self.app.state.meta["identity_header"]:
            raise ApiError(401, "invalid_request", "The X-IDENTITY-HEADER header is missing or wrong.")
        principal = self._mi_principal(req)
        token, exp, _, resource = self._mi_token(req, principal)
        return json_response({"access_token": token, "expires_on": str(exp), "resource": resource,
                              "token_type": "Bearer", "client_id": principal["client_id"]})

    def msi_imds(self, req):
        if (req.headers.get("Metadata") or "").lower() != "true":
            raise ApiError(400, "invalid_request", "Required metadata header not specified")
        principal = self._mi_principal(req)
        token, exp, lifetime, resource = self._mi_token(req, principal)
        return json_response({"access_token": token, "client_id": principal["client_id"],
                              "expires_in": str(lifetime), "expires_on": str(exp), "ext_expires_in": str(lifetime),
                              "not_before": str(exp - lifetime), "resource": resource, "token_type": "Bearer"})


# ---------------------------------------------------------------------------------------------- grants

# First-party public clients that may sign users in in any tenant, as in Azure AD: the Azure CLI's id is what
# azure.azcollection and this collection use for ad_user/password; Azure PowerShell's is the other common one.
FIRST_PARTY_PUBLIC_CLIENTS = ("04b07795-8ddb-461a-bbee-02f9e1bf7b46", "1950a258-227b-4e31-a9cf-717495945fc2")
# Tenant aliases a user may sign in through: the user's own tenant is found from the user name.
_USER_TENANT_ALIASES = ("organizations", "common")


def _v2_resource(form):
    scopes = [s for s in (form.get("scope") or "").split() if s.endswith("/.default")]
    return scopes[0] if scopes else None


class _GrantRefused(Exception):
    def __init__(self, response):
        super().__init__("grant refused")
        self.response = response


class _TokenGrant:
    """One token request: its checks raise _GrantRefused with AAD's answer (AADSTS code), else the tokens."""

    def __init__(self, app, form, tenant, resource_from):
        self.app, self.form, self.tenant, self.resource_from = app, form, tenant, resource_from
        self.tenant_ref = "%s/%s" % (app.base_url, tenant)

    def error(self, status, error, code, text):
        return _aad_error(status, error, code, text, self.tenant_ref)

    def refuse(self, status, error, code, text):
        raise _GrantRefused(self.error(status, error, code, text))

    # ---------------------------------------------------------------- grants
    def client_credentials(self):
        self._check_tenant(allow_aliases=False)
        principal = self._app()
        if principal is None or not principal.get("client_secret"):
            self._unknown_app()
        self._check_secret(principal, "client_credentials")
        resource = self._resource("Client credential flows must have a scope value with /.default suffixed to "
                                  "the resource identifier (application ID URI).")
        return self._answer(principal, resource)

    def password(self):
        self._check_tenant(allow_aliases=True)
        client_id = self._public_or_confidential_client()
        for name in ("username", "password"):
            if not self.form.get(name):
                self.refuse(400, "invalid_request", 900144, "The request body must contain the following "
                            "parameter: '%s'." % name)
        user = self.app.world.users.get(self.form["username"].lower())
        if user is None:
            self.refuse(400, "invalid_grant", 50034, "The user account {EmailHidden} does not exist in the %s "
                        "directory. To sign into this application, the account must be added to the directory."
                        % self.app.world.tenant_id)
        if self.form["password"] != user["password"]:
            self.refuse(400, "invalid_grant", 50126, "Error validating credentials due to invalid username or "
                        "password.")
        return self._answer(user, self._resource(), client_id)

    def refresh_token(self):
        self._check_tenant(allow_aliases=True)
        client_id = self._public_or_confidential_client()
        try:
            claims = self.app.tokens.validate(self.form.get("refresh_token") or "", (REFRESH_AUDIENCE,))
        except TokenError:
            claims = None
        user = self.app.world.principals.get((claims or {}).get("oid"))
        if user is None or claims.get("cid") != client_id:
            self.refuse(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid: the "
                        "refresh token is not valid for this application.")
        return self._answer(user, self._resource(), client_id)

    # ---------------------------------------------------------------- checks
    def _check_tenant(self, allow_aliases):
        wanted = self.tenant.lower()
        if wanted == self.app.world.tenant_id.lower() or allow_aliases and wanted in _USER_TENANT_ALIASES:
            return
        self.refuse(400, "invalid_request", 90002, "Tenant '%s' not found. Check to make sure you have the correct "
                    "tenant ID and are signing into the correct cloud." % self.tenant)

    def _app(self):
        return self.app.world.by_client_id.get((self.form.get("client_id") or "").lower())

    def _unknown_app(self):
        self.refuse(400, "unauthorized_client", 700016, "Application with identifier '%s' was not found in the "
                    "directory '%s'. This can happen if the application has not been installed by the administrator "
                    "of the tenant or consented to by any user in the tenant. You may have sent your authentication "
                    "request to the wrong tenant." % (self.form.get("client_id", ""), self.tenant))

    def _check_secret(self, principal, grant):
        if "client_secret" not in self.form:
            self.refuse(401, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is "
                        "required for the '%s' grant type." % grant)
        if self.form["client_secret"] != principal["client_secret"]:
            self.refuse(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being "
                        "sent in the request is the client secret value, not the client secret ID, for a secret "
                        "added to app '%s'." % principal["client_id"])

    def _public_or_confidential_client(self):
        """The app a user signs in with: a first-party public client, or a world app with its secret."""
        client_id = (self.form.get("client_id") or "").lower()
        if client_id in FIRST_PARTY_PUBLIC_CLIENTS:
            return client_id
        principal = self._app()
        if principal is None or not principal.get("client_secret"):
            self._unknown_app()
        self._check_secret(principal, self.form.get("grant_type"))
        return client_id

    def _resource(self, hint=""):
        resource = self.resource_from(self.form)
        if not resource:
            self.refuse(400, "invalid_scope", 1002012, ("The provided value for scope is not valid. " + hint).strip())
        return resource

    # ---------------------------------------------------------------- answer
    def _answer(self, principal, resource, client_id=None):
        """The token answer; a user's also has a refresh token, an id token and client_info, as MSAL expects."""
        tokens, lifetime = self.app.tokens, int(self.app.state.knobs["token_lifetime"])
        token, _ = tokens.issue(principal, resource, lifetime, client_id=client_id)
        body = {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}
        if principal.get("type") == "User":
            issuer = "%s/%s/v2.0" % (self.app.base_url, self.app.world.tenant_id)
            body.update(scope=self.form.get("scope") or resource,
                        refresh_token=tokens.issue_refresh(principal, client_id),
                        id_token=tokens.issue_id_token(principal, client_id, lifetime, issuer),
                        client_info=client_info(principal, self.app.world.tenant_id))
        return json_response(body, headers={"Cache-Control": "no-store, no-cache"})

"""Access tokens: HMAC-signed JWTs, so that they survive a restart (the key is in state.json) and
need no token table.  Clients treat them as opaque; we check signature, expiry and audience."""
import base64
import hashlib
import hmac
import json
import time
import uuid

ARM_AUDIENCES = ("https://management.azure.com", "https://management.core.windows.net")
KV_AUDIENCES = ("https://vault.azure.net",)
STORAGE_AUDIENCES = ("https://storage.azure.com",)
# Refresh tokens are tokens of this audience: no service accepts them, only the token endpoint (refresh_token grant).
REFRESH_AUDIENCE = "urn:dpemulator:refresh-token"
REFRESH_LIFETIME = 90 * 86400          # Azure AD's default inactivity lifetime of a refresh token


def client_info(principal, tenant_id):
    """The client_info MSAL asks for (client_info=1): the account's home ids, base64url JSON."""
    return _b64(json.dumps({"uid": principal["object_id"], "utid": tenant_id}).encode())


def _b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def normalize_audience(value):
    """'https://management.azure.com/.default' / '.../' / '...' -> 'https://management.azure.com'."""
    value = str(value or "").strip()
    if value.endswith("/.default"):
        value = value[: -len("/.default")]
    return value.rstrip("/").lower()


class TokenError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class TokenService:
    def __init__(self, key_hex, tenant_id):
        self.key = bytes.fromhex(key_hex)
        self.tenant_id = tenant_id

    def issue(self, principal, audience, lifetime, client_id=None):
        """An access token for `principal`; a user's names the app it signed in with (`client_id`)."""
        now = int(time.time())
        claims = {"aud": normalize_audience(audience), "iss": "https://sts.windows.net/%s/" % self.tenant_id,
                  "iat": now, "nbf": now - 5, "exp": now + int(lifetime), "oid": principal["object_id"],
                  "sub": principal["object_id"], "appid": client_id or principal["client_id"], "tid": self.tenant_id,
                  "idtyp": "app", "ver": "1.0", "uti": uuid.uuid4().hex[:22]}
        if principal.get("type") == "User":
            claims.update(idtyp="user", upn=principal["user_principal_name"], name=principal["name"])
        return self._sign(claims), claims["exp"]

    def issue_refresh(self, principal, client_id, lifetime=REFRESH_LIFETIME):
        """A refresh token: signed like an access token, for REFRESH_AUDIENCE only, bound to the app."""
        now = int(time.time())
        return self._sign({"aud": REFRESH_AUDIENCE, "iat": now, "exp": now + lifetime, "oid": principal["object_id"],
                           "cid": client_id, "tid": self.tenant_id, "uti": uuid.uuid4().hex[:22]})

    def issue_id_token(self, principal, client_id, lifetime, issuer):
        """An OpenID id token (MSAL reads its claims to name the account in its cache; nobody checks the signature)."""
        now = int(time.time())
        return self._sign({"aud": client_id, "iss": issuer, "iat": now, "nbf": now - 5, "exp": now + int(lifetime),
                           "oid": principal["object_id"], "sub": principal["object_id"], "tid": self.tenant_id,
                           "preferred_username": principal["user_principal_name"], "name": principal["name"],
                           "ver": "2.0"})

    def _sign(self, claims):
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self.key, ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest())
        return "%s.%s.%s" % (head, body, sig)

    def validate(self, token, audiences):
        """Claims of a valid token for one of `audiences`; TokenError(code) in ARM's terms otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("InvalidAuthenticationToken", "The access token is invalid.")
        expected = _b64(hmac.new(self.key, ("%s.%s" % (parts[0], parts[1])).encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, parts[2]):
            raise TokenError("InvalidAuthenticationToken", "The access token has an invalid signature.")
        try:
            claims = json.loads(_unb64(parts[1]))
        except ValueError:
            raise TokenError("InvalidAuthenticationToken", "The access token is invalid.")
        if claims.get("exp", 0) < time.time():
            raise TokenError("ExpiredAuthenticationToken",
                             "The access token expiry UTC time '%s' is earlier than current UTC time."
                             % time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(claims.get("exp", 0))))
        if claims.get("aud") not in audiences:
            raise TokenError("InvalidAuthenticationTokenAudience",
                             "The access token has been obtained for wrong audience or resource '%s'. It should "
                             "exactly match with one of the allowed audiences '%s'."
                             % (claims.get("aud"), "', '".join(audiences)))
        return claims

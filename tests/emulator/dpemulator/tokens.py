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

    def issue(self, principal, audience, lifetime):
        now = int(time.time())
        claims = {"aud": normalize_audience(audience), "iss": "https://sts.windows.net/%s/" % self.tenant_id,
                  "iat": now, "nbf": now - 5, "exp": now + int(lifetime), "oid": principal["object_id"],
                  "sub": principal["object_id"], "appid": principal["client_id"], "tid": self.tenant_id,
                  "idtyp": "app", "ver": "1.0", "uti": uuid.uuid4().hex[:22]}
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self.key, ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest())
        return "%s.%s.%s" % (head, body, sig), claims["exp"]

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

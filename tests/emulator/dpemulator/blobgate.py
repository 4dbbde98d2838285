"""The authorizing HTTPS front of Azurite: Azure's RBAC check for the blob data plane, which Azurite lacks.

Azurite (`--oauth basic`) accepts any well-formed storage token and lets it read and write everything. Azure also
checks that the token's principal holds a role whose dataActions allow the call (Storage Blob Data Reader,
Contributor or Owner) at the container, its account or a parent scope; without one it answers 403 with
`x-ms-error-code: AuthorizationPermissionMismatch` and the XML error body "This request is not authorized to perform
this operation using this permission." (https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes,
https://learn.microsoft.com/azure/storage/blobs/authorize-access-azure-active-directory).

This gate runs as its own process (`python -m dpemulator.blobgate CONFIG`, started and stopped by azurite.Azurite,
its pid in blobgate.pid) on 127.0.0.1 with the emulator's certificate. For each request it checks the bearer token
(the emulator's signature, audience https://storage.azure.com) and the role assignments in the emulator's state.json
(re-read when the file changes), then passes the request through to Azurite unchanged and streams the answer back
(Range, HEAD and keep-alive included). Shared Key and SAS requests go through untouched: Azure does not apply RBAC
to them, and Azurite checks their signature.
"""
import http.client
import http.server
import json
import os
import socketserver
import ssl
import sys
from urllib.parse import parse_qs, unquote, urlsplit

from .roles import has_permission
from .server import blob_error_body
from .tokens import STORAGE_AUDIENCES, TokenError, TokenService

PID_FILE = "blobgate.pid"
CHUNK = 1 << 18
_CONTAINERS = "Microsoft.Storage/storageAccounts/blobServices/containers"
_BLOBS = _CONTAINERS + "/blobs"
# Hop-by-hop headers (RFC 9110 7.6.1): the gate's connections are its own.
_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}


def required_action(method, path_segments, query):
    """(action, data action?, scope suffix) that Azure's RBAC checks for a blob REST call (path style
    /<account>[/<container>[/<blob>]]), after the operations' "Permissions" sections of the Blob service REST API."""
    container = path_segments[1] if len(path_segments) > 1 else None
    is_blob = len(path_segments) > 2
    if not container:                                    # account level: list containers, user delegation key
        if method == "POST":
            return "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action", False, None
        return _CONTAINERS + "/read", False, None
    if not is_blob:
        if query.get("comp") == ["list"]:
            return _BLOBS + "/read", True, container
        verb = {"GET": "read", "HEAD": "read", "PUT": "write", "DELETE": "delete"}.get(method, "write")
        return "%s/%s" % (_CONTAINERS, verb), False, container
    verb = {"GET": "read", "HEAD": "read", "DELETE": "delete"}.get(method, "write")
    return "%s/%s" % (_BLOBS, verb), True, container


class _Assignments:
    """The role assignments of state.json, re-read when the emulator has written it again."""

    def __init__(self, path):
        self.path = path
        self.stamp = None
        self.items = []
        self.meta = {}

    def current(self):
        st = os.stat(self.path)
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self.stamp:
            with open(self.path) as fh:
                data = json.load(fh)
            self.items = list(data.get("role_assignments", {}).values())
            self.meta = data.get("meta", {})
            self.stamp = stamp
        return self.items


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dpemulator-blobgate"
    upstream = None

    def log_message(self, fmt, *args):        # the access log would be one line per 4 MiB chunk
        pass

    def _answer_error(self, status, code, message, extra=None):
        body = blob_error_body(code, message)
        self.send_response(status)
        for name, value in dict({"Content-Type": "application/xml", "Content-Length": str(len(body)),
                                 "x-ms-error-code": code, "x-ms-version": "2023-11-03"}, **(extra or {})).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _authorize(self):
        """None when the request may go on, else (status, code, message, headers) Azure would answer."""
        cfg = self.server.config
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("SharedKey ") or "sig" in query:
            return None
        challenge = {"WWW-Authenticate": "Bearer authorization_uri=%s/%s/oauth2/authorize "
                                         "resource_id=https://storage.azure.com" % (cfg["authority"], cfg["tenant"])}
        if not auth.startswith("Bearer "):
            return (401, "NoAuthenticationInformation", "Server failed to authenticate the request. Please refer to "
                    "the information in the www-authenticate header.", challenge)
        assignments = self.server.assignments.current()
        try:
            claims = self.server.tokens(self.server.assignments.meta).validate(auth[7:].strip(), STORAGE_AUDIENCES)
        except TokenError as exc:
            return 401, "InvalidAuthenticationInfo", exc.message, challenge
        segs = [unquote(s) for s in parts.path.split("/") if s]
        account_id = cfg["accounts"].get(segs[0].lower()) if segs else None
        if account_id is None:
            return None                        # not a world account: Azurite answers for it
        action, data, container = required_action(self.command, segs, query)
        scope = account_id + ("/blobServices/default/containers/%s" % container if container else "")
        if has_permission(assignments, claims["oid"], action, scope, data=data):
            return None
        return (403, "AuthorizationPermissionMismatch",
                "This request is not authorized to perform this operation using this permission.", None)

    def _relay(self):
        denied = self._authorize()
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return self._answer_error(411, "MissingContentLengthHeader", "The gate needs Content-Length (the Azure "
                                      "SDKs send it).")
        if denied:
            if length:                         # read the body we will not forward, so keep-alive stays in step
                self._copy(self.rfile, None, int(length))
            return self._answer_error(*denied)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        conn = self._upstream()
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            if length:
                self._copy(self.rfile, conn.sock, int(length))
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException):
            self.upstream = None
            conn.close()
            self.close_connection = True
            return self._answer_error(503, "ServerBusy", "Azurite did not answer the gate.")
        self.send_response_only(resp.status, resp.reason)
        for name, value in resp.getheaders():
            if name.lower() not in _HOP:
                self.send_header(name, value)
        chunked = resp.chunked and self.command != "HEAD"
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD" or resp.status in (204, 304):
            resp.read()
        elif chunked:
            for block in iter(lambda: resp.read1(CHUNK), b""):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            self.wfile.write(b"0\r\n\r\n")
        else:
            buf = memoryview(bytearray(CHUNK))
            while True:
                n = resp.readinto(buf)
                if not n:
                    break
                self.wfile.write(buf[:n])
        if resp.will_close:
            self.upstream = None
            conn.close()

    @staticmethod
    def _copy(src, sock, length):
        while length > 0:
            block = src.read(min(CHUNK, length))
            if not block:
                raise ConnectionError("the client closed the request body early")
            if sock is not None:
                sock.sendall(block)
            length -= len(block)

    def _upstream(self):
        if self.upstream is None:
            cfg = self.server.config
            self.upstream = http.client.HTTPSConnection("127.0.0.1", cfg["upstream_port"],
                                                        context=self.server.client_context, timeout=300)
        return self.upstream

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _relay

    def finish(self):
        if self.upstream is not None:
            self.upstream.close()
        super().finish()


class GateServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, config):
        self.config = config
        self.assignments = _Assignments(config["state_file"])
        self._tokens = None
        self.client_context = ssl.create_default_context(cafile=config["ca_file"])
        super().__init__(("127.0.0.1", config["port"]), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(config["cert_file"], config["key_file"])
        self.socket = ctx.wrap_socket(self.socket, server_side=True)

    def tokens(self, meta):
        if self._tokens is None:
            self._tokens = TokenService(meta["signing_key"], self.config["tenant"])
        return self._tokens


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as fh:
        config = json.load(fh)
    server = GateServer(config)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

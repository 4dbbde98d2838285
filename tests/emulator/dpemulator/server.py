"""HTTP plumbing: a threaded HTTPS/1.1 server with keep-alive, the routing table, the request
pipeline (faults, throttling, authentication, api-version) and error rendering per service.

Threads: one per connection (ThreadingHTTPServer); the TLS handshake runs in that thread, not in the
accept loop, so slow handshakes do not stall other clients.  The listen backlog is raised for
hundreds of concurrent pollers.
"""
import json
import logging
import re
import socket
import ssl
import struct
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape as xml_escape

from .errors import ApiError, cloud_error
from .faults import STATUS_CODES
from .tokens import TokenError

log = logging.getLogger("dpemulator")
access_log = logging.getLogger("dpemulator.access")

# Kinds of routes: they decide authentication, error shape and ARM headers.
ARM, AAD, KV, BLOB, CONTROL, META = "arm", "aad", "kv", "blob", "control", "meta"

API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview|-beta|-alpha|-privatepreview)?$|^\d+\.\d+(-preview)?$")


class Request:
    __slots__ = ("method", "path", "query", "raw_query", "headers", "body", "route", "params", "principal",
                 "claims", "ctx", "client")

    def __init__(self, method, target, headers, body, client):
        parts = urlsplit(target)
        self.method = method
        self.path = parts.path or "/"
        self.raw_query = parts.query
        # ARM query names ($filter, api-version) are case-insensitive in practice; keep values verbatim.
        self.query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.headers = headers
        self.body = body
        self.route = None
        self.params = {}
        self.principal = None
        self.claims = None
        self.ctx = {}
        self.client = client

    def q(self, name, default=None):
        for k, v in self.query.items():
            if k.lower() == name.lower():
                return v
        return default

    def json(self):
        if not self.body:
            raise ApiError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                           "deserialized: the body is empty.")
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ApiError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                           "deserialized: %s" % exc)


class Response:
    def __init__(self, status=200, body=b"", headers=None, content_type="application/json; charset=utf-8",
                 file_path=None, length=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.content_type = content_type
        self.file_path = file_path
        self.length = length


def json_response(obj, status=200, headers=None):
    return Response(status, json.dumps(obj).encode(), headers)


def empty_response(status, headers=None):
    return Response(status, b"", headers, content_type=None)


class Route:
    def __init__(self, method, pattern, handler, kind, name, api_versions=None, write=None):
        self.method = method
        self.regex = re.compile("^" + pattern + "$", re.I)
        self.handler = handler
        self.kind = kind
        self.name = name
        self.api_versions = api_versions
        self.write = (method != "GET" and method != "HEAD") if write is None else write


class Router:
    def __init__(self):
        self.routes = []

    def add(self, method, pattern, handler, kind, name, api_versions=None, write=None):
        self.routes.append(Route(method, pattern, handler, kind, name, api_versions, write))

    def match(self, method, path):
        path_matched = None
        for route in self.routes:
            m = route.regex.match(path)
            if m:
                if route.method == method or (route.method == "GET" and method == "HEAD" and route.kind == BLOB):
                    return route, m.groupdict()
                path_matched = path_matched or route
        return path_matched, None


class DropConnection(Exception):
    pass


# ---------------------------------------------------------------------------------------------- rendering

def blob_error_body(code, message):
    """The blob service's XML error body (also the Azurite gate's, blobgate.py)."""
    return ('<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code><Message>%s\nRequestId:%s\nTime:%s'
            '</Message></Error>' % (xml_escape(code), xml_escape(message), uuid.uuid4(),
                                    time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime()))).encode()


def render_error(kind, err):
    headers = dict(err.headers)
    if kind == BLOB:
        headers["x-ms-error-code"] = err.code
        return Response(err.status, blob_error_body(err.code, err.message), headers, content_type="application/xml")
    if kind == KV:
        inner = {"code": err.inner} if err.inner else None
        body = {"error": {"code": err.code, "message": err.message}}
        if inner:
            body["error"]["innererror"] = inner
        return json_response(body, err.status, headers)
    if kind == AAD:
        return json_response({"error": err.code, "error_description": err.message}, err.status, headers)
    return json_response(cloud_error(err.code, err.message, err.target, err.user_facing), err.status, headers)


def status_fault(rule):
    """The error a `status` or `status_after` fault answers (429 with its Retry-After, or a 5xx)."""
    headers = {"Retry-After": str(rule["retry_after"])} if rule.get("retry_after") is not None else {}
    if rule["status"] == 429:
        return ApiError(429, "TooManyRequests", "The request is being throttled (injected fault).", headers=headers)
    return ApiError(rule["status"], STATUS_CODES[rule["status"]], "Injected fault: HTTP %d." % rule["status"],
                    headers=headers)


def unknown_route(req):
    path = req.path
    m = re.match(r"^/subscriptions/[^/]+(?:/resourceGroups/[^/]+)?/providers/([^/]+)/([^/]+)", path, re.I)
    if m:
        return ApiError(404, "InvalidResourceType", "The resource type '%s' could not be found in the namespace "
                        "'%s' for api version '%s'." % (m.group(2), m.group(1), req.q("api-version", "")))
    if path.lower().startswith("/subscriptions/"):
        return ApiError(404, "ResourceNotFound", "The resource '%s' was not found." % path)
    return ApiError(404, "NotFound", "No route for %s %s." % (req.method, path))


# ---------------------------------------------------------------------------------------------- pipeline

class Pipeline:
    """Everything a request passes through around its handler."""

    def __init__(self, app):
        self.app = app

    def authenticate(self, req, kind):
        auth = req.headers.get("Authorization") or ""
        if kind == CONTROL:
            token = auth[7:] if auth.startswith("Bearer ") else req.headers.get("X-Emulator-Token", "")
            if token != self.app.state.meta["control_token"]:
                raise ApiError(401, "Unauthorized", "The control API needs the control token from env.json.")
            return
        audiences = {ARM: self.app.arm_audiences, KV: self.app.kv_audiences,
                     BLOB: self.app.storage_audiences}[kind]
        challenge = {
            ARM: 'Bearer authorization_uri="%s/%s", error="invalid_token", error_description="%s"',
            KV: 'Bearer authorization="%s/%s", resource="https://vault.azure.net"',
            BLOB: 'Bearer authorization_uri=%s/%s/oauth2/authorize resource_id=https://storage.azure.com',
        }[kind]
        if not auth.startswith("Bearer "):
            code, msg = {ARM: ("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."),
                         KV: ("Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."),
                         BLOB: ("NoAuthenticationInformation", "Server failed to authenticate the request. Please "
                                "refer to the information in the www-authenticate header.")}[kind]
            hdr = challenge % ((self.app.base_url, self.app.world.tenant_id, "missing token")
                               if kind == ARM else (self.app.base_url, self.app.world.tenant_id))
            raise ApiError(401, code, msg, headers={"WWW-Authenticate": hdr})
        try:
            req.claims = self.app.tokens.validate(auth[7:].strip(), audiences)
        except TokenError as exc:
            code = exc.code
            if kind == KV:
                code = "Unauthorized"
            elif kind == BLOB:
                code = "InvalidAuthenticationInfo"
            hdr = challenge % ((self.app.base_url, self.app.world.tenant_id, exc.code)
                               if kind == ARM else (self.app.base_url, self.app.world.tenant_id))
            raise ApiError(401, code, exc.message, headers={"WWW-Authenticate": hdr})
        req.principal = req.claims["oid"]

    def check_api_version(self, req, route):
        version = req.q("api-version")
        if version is None:
            raise ApiError(400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) "
                           "is required for all requests.")
        if not API_VERSION_RE.match(version):
            raise ApiError(400, "InvalidApiVersionParameter", "The api-version '%s' is invalid. The supported "
                           "versions are '%s'." % (version, "','".join(sorted(route.api_versions, reverse=True))))
        if version not in route.api_versions:
            raise ApiError(400, "NoRegisteredProviderFound", "No registered resource provider found for location "
                           "'%s' and API version '%s' for type '%s'. The supported api-versions are '%s'."
                           % (self.app.world.location, version, route.name.split(".")[0],
                              ", ".join(sorted(route.api_versions))))

    def handle(self, req):
        """Run the request; returns (Response, route_kind, drop_after)."""
        app = self.app
        route, params = app.router.match(req.method, req.path)
        kind = route.kind if route else (ARM if req.path.lower().startswith("/subscriptions") else META)
        name = route.name if route and params is not None else "unmatched"
        app.counters.route("%s %s" % (req.method, name))
        drop_after = False
        status_after = None
        try:
            for rule in app.faults.match(req.method, req.path):
                app.counters.inc("faults_injected")
                k = rule["kind"]
                if k == "latency":
                    time.sleep(rule["latency"])
                elif k == "drop_before":
                    raise DropConnection()
                elif k == "drop_after":
                    drop_after = True
                elif k == "job_failure":
                    req.ctx["job_failure"] = {"code": rule["code"], "message": rule["message"]}
                elif k == "status_after":
                    status_after = rule
                elif k == "status":
                    if rule["status"] == 429:
                        app.counters.inc("throttled_429")
                    raise status_fault(rule)
            if route is None:
                if kind == ARM:
                    self.authenticate(req, ARM)      # ARM answers 401 before it looks at the path
                raise unknown_route(req)
            if params is None:
                raise ApiError(405, "HttpMethodNotAllowed", "The HTTP method '%s' is not supported for %s."
                               % (req.method, req.path))
            req.route, req.params = route, params
            if kind == ARM:
                app.cross_region.check_outage(route, params)   # a region that is down answers nothing
                sub = (params.get("sub") or "").lower() or "-"
                allowed, remaining, retry = app.throttle.take(sub, "write" if route.write else "read")
                req.ctx["ratelimit"] = ("writes" if route.write else "reads", remaining)
                req.ctx["subscription"] = sub
                if not allowed:
                    app.counters.inc("throttled_429")
                    raise ApiError(429, "TooManyRequests", "Number of %s requests for subscription '%s' exceeded "
                                   "the limit. Please try again after '%d' seconds."
                                   % ("write" if route.write else "read", sub, retry),
                                   headers={"Retry-After": str(retry)})
                self.authenticate(req, kind)
                if sub != "-" and sub not in app.world.subscriptions:
                    raise ApiError(404, "SubscriptionNotFound", "The subscription '%s' could not be found." % sub)
                if route.api_versions is not None:
                    self.check_api_version(req, route)
            elif kind in (KV, BLOB, CONTROL):
                self.authenticate(req, kind)
            resp = route.handler(req, **params)
            if status_after is not None:
                raise status_fault(status_after)      # the handler's effects stay; its answer is lost
        except DropConnection:
            raise
        except ApiError as err:
            resp = render_error(kind, err)
        except Exception:
            log.exception("handler failed: %s %s", req.method, req.path)
            resp = render_error(kind, ApiError(500, "InternalServerError", "The emulator failed; see its log."))
        if kind == ARM:
            self.arm_headers(req, resp)
        return resp, kind, drop_after

    def arm_headers(self, req, resp):
        rid = str(uuid.uuid4())
        resp.headers.setdefault("x-ms-request-id", rid)
        resp.headers.setdefault("x-ms-correlation-request-id",
                                req.headers.get("x-ms-correlation-request-id") or rid)
        resp.headers.setdefault("x-ms-routing-request-id", "WESTEUROPE:%s:%s" % (time.strftime("%Y%m%dT%H%M%SZ"), rid))
        if req.headers.get("x-ms-client-request-id"):
            resp.headers.setdefault("x-ms-client-request-id", req.headers["x-ms-client-request-id"])
        kind, remaining = req.ctx.get("ratelimit", ("reads", None))
        if remaining is not None:
            resp.headers["x-ms-ratelimit-remaining-subscription-%s" % kind] = str(remaining)
            other = "writes" if kind == "reads" else "reads"
            resp.headers["x-ms-ratelimit-remaining-subscription-%s" % other] = str(
                self.app.throttle.remaining(req.ctx["subscription"], other[:-1]))


# ---------------------------------------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dpemulator"
    sys_version = ""
    timeout = 120            # idle keep-alive connections are closed after this many seconds

    def log_message(self, fmt, *args):   # the default logs to stderr; we keep our own access log
        pass

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self):
        t0 = time.monotonic()
        app = self.server.app
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        req = Request(self.command, self.path, self.headers, body, self.client_address[0])
        status, size = 0, 0
        try:
            resp, kind, drop_after = app.pipeline.handle(req)
            if drop_after:
                raise DropConnection()
            size = self._send(resp)
            status = resp.status
        except DropConnection:
            status = "RST"
            self._reset()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            status = "ABORT"
            self.close_connection = True
        finally:
            # Path only: query strings may carry filters or MI resource names, never secrets in logs.
            access_log.info('%s %s %s %s %.1fms %s', self.client_address[0], self.command, req.path, status,
                            (time.monotonic() - t0) * 1000, size)

    def _send(self, resp):
        self.send_response(resp.status)
        if resp.content_type:
            self.send_header("Content-Type", resp.content_type)
        length = resp.length if resp.file_path else len(resp.body)
        for k, v in resp.headers.items():
            if k.lower() not in ("content-length",):
                self.send_header(k, v)
        self.send_header("Content-Length", str(length))
        self.send_header("Date", self.date_time_string())
        self.end_headers()
        if self.command == "HEAD":
            return 0
        if resp.file_path:
            with open(resp.file_path, "rb") as fh:
                while True:
                    buf = fh.read(1 << 20)
                    if not buf:
                        break
                    self.wfile.write(buf)
        elif resp.body:
            self.wfile.write(resp.body)
        return length

    def _reset(self):
        """Close with SO_LINGER 0: the client sees a connection reset, no HTTP response."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address, app, ssl_context):
        self.app = app
        self.ssl_context = ssl_context
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            conn = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            conn.settimeout(Handler.timeout)
            Handler(conn, client_address, self)
        except (ssl.SSLError, OSError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        log.debug("connection error from %s", client_address, exc_info=True)


def make_ssl_context(cert_file, key_file):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx

"""Microsoft.Storage: the account resource and the blob calls restore-as-files needs, path style
(https://127.0.0.1:PORT/blob/<account>/<container>/<blob>), with bearer-token (RBAC) auth only."""
import email.utils
import os
import re
import shutil
import uuid
from urllib.parse import quote
from xml.sax.saxutils import escape

from . import apiversions
from .arm_common import RG, SUB, authorize, check_rg
from .errors import ApiError, not_found
from .roles import has_permission
from .server import ARM, BLOB, Response, empty_response, json_response
from .util import iso, now

_BLOB = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
_CONTAINER_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


def _http_date(ts):
    return email.utils.formatdate(ts, usegmt=True)


class StorageProvider:
    def __init__(self, app):
        self.app = app
        self.root = os.path.join(app.state_dir, "blobs")

    def seed(self, data):
        for acct in self.app.world.storage_accounts.values():
            data["containers"][acct["name"].lower()] = {c: {"created": now()} for c in acct["containers"]}

    def register(self, r):
        v = apiversions.STORAGE
        acct = RG + r"/providers/Microsoft\.Storage/storageAccounts/(?P<name>[^/]+)"
        r.add("GET", acct, self.get_account, ARM, "storage.accounts.get", v)
        r.add("GET", RG + r"/providers/Microsoft\.Storage/storageAccounts", self.list_accounts, ARM,
              "storage.accounts.list", v)
        r.add("GET", SUB + r"/providers/Microsoft\.Storage/storageAccounts", self.list_accounts, ARM,
              "storage.accounts.list", v)
        r.add("GET", acct + r"/blobServices/default/containers", self.list_containers_arm, ARM,
              "storage.containers.list", v)
        r.add("GET", acct + r"/blobServices/default/containers/(?P<container>[^/]+)", self.get_container_arm, ARM,
              "storage.containers.get", v)
        base = r"/blob/(?P<account>[^/]+)/(?P<container>[^/]+)"
        r.add("GET", base + "/?", self.container_get, BLOB, "blob.container")
        r.add("PUT", base + "/?", self.container_put, BLOB, "blob.container.create")
        r.add("GET", base + r"/(?P<blob>.+)", self.get_blob, BLOB, "blob.get")
        r.add("PUT", base + r"/(?P<blob>.+)", self.put_blob, BLOB, "blob.put")
        r.add("DELETE", base + r"/(?P<blob>.+)", self.delete_blob, BLOB, "blob.delete")

    # ------------------------------------------------------------------ used by the engine and the rules
    def containers(self, account):
        return self.app.state.data["containers"].get(account.lower(), {})

    def _path(self, account, container, blob):
        return os.path.join(self.root, account.lower(), container, quote(blob, safe=""))

    def store_file(self, account, container, blob, src_path, content_type="application/octet-stream"):
        """Put a local file as a blob (hard link when possible: the vault copy is immutable)."""
        dest = self._path(account, container, blob)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        tmp = dest + ".tmp-%s" % uuid.uuid4().hex
        try:
            os.link(src_path, tmp)
        except OSError:
            shutil.copyfile(src_path, tmp)
        os.replace(tmp, dest)
        self._register(account, container, blob, os.path.getsize(dest), content_type)
        return dest

    def remove_blob(self, account, container, blob):
        with self.app.state.tx() as data:
            data["blobs"].get("%s/%s" % (account.lower(), container), {}).pop(blob, None)
        try:
            os.unlink(self._path(account, container, blob))
        except FileNotFoundError:
            pass

    def _register(self, account, container, blob, size, content_type):
        stamp = now()
        with self.app.state.tx() as data:
            data["blobs"].setdefault("%s/%s" % (account.lower(), container), {})[blob] = {
                "size": size, "etag": '"0x8D%X"' % int(stamp * 1e6), "modified": stamp, "created": stamp,
                "content_type": content_type}

    # ------------------------------------------------------------------ resource plane
    def _account(self, sub, rg, name):
        check_rg(self.app, sub, rg)
        acct = self.app.world.storage_accounts.get(name.lower())
        if acct is None or acct["subscription"] != sub.lower() or acct["resource_group"].lower() != rg.lower():
            raise not_found("Microsoft.Storage/storageAccounts", name, rg)
        return acct

    def account_json(self, acct):
        base = "%s/blob/%s/" % (self.app.base_url, acct["name"])
        return {"id": acct["id"], "name": acct["name"], "type": "Microsoft.Storage/storageAccounts",
                "location": acct["location"], "kind": "StorageV2", "tags": {},
                "sku": {"name": "Standard_LRS", "tier": "Standard"},
                "properties": {"provisioningState": "Succeeded", "creationTime": iso(self.app.state.meta["created"]),
                               "primaryEndpoints": {"blob": base, "dfs": base, "web": base},
                               "primaryLocation": acct["location"], "statusOfPrimary": "available",
                               "accessTier": "Hot", "allowBlobPublicAccess": False, "allowSharedKeyAccess": True,
                               "minimumTlsVersion": "TLS1_2", "supportsHttpsTrafficOnly": True,
                               "publicNetworkAccess": "Enabled",
                               "networkAcls": {"bypass": "AzureServices", "defaultAction": "Allow", "ipRules": [],
                                               "virtualNetworkRules": []}}}

    def get_account(self, req, sub, rg, name):
        acct = self._account(sub, rg, name)
        authorize(self.app, req, "Microsoft.Storage/storageAccounts/read", acct["id"])
        return json_response(self.account_json(acct))

    def list_accounts(self, req, sub, rg=None):
        if rg:
            check_rg(self.app, sub, rg)
        scope = "/subscriptions/%s" % sub + ("/resourceGroups/%s" % rg if rg else "")
        authorize(self.app, req, "Microsoft.Storage/storageAccounts/read", scope)
        return json_response({"value": [self.account_json(a) for a in self.app.world.storage_accounts.values()
                                        if a["subscription"] == sub.lower()
                                        and (rg is None or a["resource_group"].lower() == rg.lower())]})

    def _container_json(self, acct, name, meta):
        return {"id": "%s/blobServices/default/containers/%s" % (acct["id"], name), "name": name,
                "type": "Microsoft.Storage/storageAccounts/blobServices/containers",
                "properties": {"publicAccess": "None", "lastModifiedTime": iso(meta["created"]),
                               "leaseStatus": "Unlocked", "leaseState": "Available", "hasImmutabilityPolicy": False,
                               "hasLegalHold": False, "deleted": False}}

    def list_containers_arm(self, req, sub, rg, name):
        acct = self._account(sub, rg, name)
        authorize(self.app, req, "Microsoft.Storage/storageAccounts/blobServices/containers/read", acct["id"])
        return json_response({"value": [self._container_json(acct, c, m)
                                        for c, m in sorted(self.containers(acct["name"]).items())]})

    def get_container_arm(self, req, sub, rg, name, container):
        acct = self._account(sub, rg, name)
        authorize(self.app, req, "Microsoft.Storage/storageAccounts/blobServices/containers/read", acct["id"])
        meta = self.containers(acct["name"]).get(container)
        if meta is None:
            raise ApiError(404, "ContainerNotFound", "The specified container does not exist.")
        return json_response(self._container_json(acct, container, meta))

    # ------------------------------------------------------------------ data plane
    def _data(self, req, account, container, action, need_container=True):
        if not req.headers.get("x-ms-version"):
            raise ApiError(400, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is not "
                           "specified: x-ms-version (required with Bearer authentication).")
        acct = self.app.world.storage_accounts.get(account.lower())
        if acct is None:
            raise ApiError(404, "ResourceNotFound", "The specified resource does not exist.")
        scope = "%s/blobServices/default/containers/%s" % (acct["id"], container)
        with self.app.state.lock:
            assignments = list(self.app.state.data["role_assignments"].values())
        data = action.startswith(_BLOB)
        if not has_permission(assignments, req.principal, action, scope, data=data):
            raise ApiError(403, "AuthorizationPermissionMismatch", "This request is not authorized to perform this "
                           "operation using this permission.")
        if need_container and container not in self.containers(acct["name"]):
            raise ApiError(404, "ContainerNotFound", "The specified container does not exist.")
        return acct

    def _std_headers(self):
        return {"x-ms-request-id": str(uuid.uuid4()), "x-ms-version": "2023-11-03"}

    def container_get(self, req, account, container):
        restype = req.q("restype")
        if restype != "container":
            raise ApiError(400, "InvalidQueryParameterValue", "Value for one of the query parameters specified in "
                           "the request URI is invalid: restype.")
        if req.q("comp") == "list":
            return self.list_blobs(req, account, container)
        acct = self._data(req, account, container, "Microsoft.Storage/storageAccounts/blobServices/containers/read")
        meta = self.containers(acct["name"])[container]
        headers = self._std_headers()
        headers.update({"Last-Modified": _http_date(meta["created"]), "ETag": '"0x8D%X"' % int(meta["created"] * 1e6),
                        "x-ms-lease-status": "unlocked", "x-ms-lease-state": "available"})
        return empty_response(200, headers)

    def container_put(self, req, account, container):
        if req.q("restype") != "container":
            raise ApiError(400, "InvalidQueryParameterValue", "restype=container is required.")
        acct = self._data(req, account, container, "Microsoft.Storage/storageAccounts/blobServices/containers/write",
                          need_container=False)
        if not _CONTAINER_NAME.match(container):
            raise ApiError(400, "InvalidResourceName", "The specified resource name contains invalid characters.")
        with self.app.state.tx() as data:
            conts = data["containers"].setdefault(acct["name"].lower(), {})
            if container in conts:
                raise ApiError(409, "ContainerAlreadyExists", "The specified container already exists.")
            conts[container] = {"created": now()}
        return empty_response(201, self._std_headers())

    def list_blobs(self, req, account, container):
        acct = self._data(req, account, container, _BLOB + "/read")
        prefix = req.q("prefix") or ""
        marker = req.q("marker") or ""
        max_results = int(req.q("maxresults") or 5000)
        with self.app.state.lock:
            blobs = dict(self.app.state.data["blobs"].get("%s/%s" % (acct["name"].lower(), container), {}))
        names = sorted(n for n in blobs if n.startswith(prefix) and n >= marker)
        chunk, rest = names[:max_results], names[max_results:]
        parts = ['<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="%s/blob/%s/" '
                 'ContainerName="%s">' % (self.app.base_url, escape(acct["name"]), escape(container))]
        if prefix:
            parts.append("<Prefix>%s</Prefix>" % escape(prefix))
        if req.q("marker"):
            parts.append("<Marker>%s</Marker>" % escape(marker))
        if req.q("maxresults"):
            parts.append("<MaxResults>%d</MaxResults>" % max_results)
        parts.append("<Blobs>")
        for n in chunk:
            b = blobs[n]
            parts.append(
                "<Blob><Name>%s</Name><Properties><Creation-Time>%s</Creation-Time><Last-Modified>%s</Last-Modified>"
                "<Etag>%s</Etag><Content-Length>%d</Content-Length><Content-Type>%s</Content-Type>"
                "<Content-Encoding /><Content-Language /><Content-CRC64 /><Content-MD5 /><Cache-Control />"
                "<Content-Disposition /><BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier>"
                "<AccessTierInferred>true</AccessTierInferred><LeaseStatus>unlocked</LeaseStatus>"
                "<LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted></Properties>"
                "<OrMetadata /></Blob>" % (escape(n), _http_date(b["created"]), _http_date(b["modified"]),
                                           escape(b["etag"].strip('"')), b["size"], escape(b["content_type"])))
        parts.append("</Blobs><NextMarker>%s</NextMarker></EnumerationResults>" % (escape(rest[0]) if rest else ""))
        return Response(200, "".join(parts).encode(), self._std_headers(), content_type="application/xml")

    def _blob_meta(self, acct, container, blob):
        with self.app.state.lock:
            meta = self.app.state.data["blobs"].get("%s/%s" % (acct["name"].lower(), container), {}).get(blob)
        if meta is None:
            raise ApiError(404, "BlobNotFound", "The specified blob does not exist.")
        return meta

    def get_blob(self, req, account, container, blob):
        acct = self._data(req, account, container, _BLOB + "/read")
        meta = self._blob_meta(acct, container, blob)
        headers = self._std_headers()
        headers.update({"ETag": meta["etag"], "Last-Modified": _http_date(meta["modified"]),
                        "x-ms-blob-type": "BlockBlob", "x-ms-creation-time": _http_date(meta["created"]),
                        "Accept-Ranges": "bytes", "x-ms-server-encrypted": "true"})
        path = self._path(acct["name"], container, blob)
        size = meta["size"]
        rng = req.headers.get("x-ms-range") or req.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        if m:
            start, end = int(m.group(1)), int(m.group(2)) if m.group(2) else size - 1
            end = min(end, size - 1)
            if start >= size:
                raise ApiError(416, "InvalidRange", "The range specified is invalid for the current size of the "
                               "resource.")
            with open(path, "rb") as fh:
                fh.seek(start)
                data = fh.read(end - start + 1)
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, size)
            return Response(206, data, headers, content_type=meta["content_type"])
        return Response(200, b"", headers, content_type=meta["content_type"], file_path=path, length=size)

    def put_blob(self, req, account, container, blob):
        acct = self._data(req, account, container, _BLOB + "/write")
        if req.headers.get("x-ms-blob-type") != "BlockBlob":
            raise ApiError(400, "MissingRequiredHeader", "x-ms-blob-type: BlockBlob is required.")
        dest = self._path(acct["name"], container, blob)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        tmp = dest + ".tmp-%s" % uuid.uuid4().hex
        with open(tmp, "wb") as fh:
            fh.write(req.body)
        os.replace(tmp, dest)
        ctype = req.headers.get("x-ms-blob-content-type") or req.headers.get("Content-Type") or \
            "application/octet-stream"
        self._register(acct["name"], container, blob, len(req.body), ctype)
        meta = self._blob_meta(acct, container, blob)
        headers = self._std_headers()
        headers.update({"ETag": meta["etag"], "Last-Modified": _http_date(meta["modified"]),
                        "x-ms-request-server-encrypted": "true"})
        return empty_response(201, headers)

    def delete_blob(self, req, account, container, blob):
        acct = self._data(req, account, container, _BLOB + "/delete")
        self._blob_meta(acct, container, blob)
        self.remove_blob(acct["name"], container, blob)
        return empty_response(202, self._std_headers())

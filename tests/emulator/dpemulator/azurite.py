"""Azurite (Microsoft's Azure Storage emulator, npm package `azurite`) as the emulator's second blob data plane.

The emulator starts `azurite-blob` on 127.0.0.1 with its own certificate (so clients trust it through the same
ca.pem) and `--oauth basic`, and stops it with itself. Basic OAuth decodes the bearer token without checking its
signature and accepts it when `iss` starts with https://sts.windows.net/ (ours: https://sts.windows.net/<tenant>/),
`aud` is https://storage.azure.com (ours, from the emulator's token endpoints for the storage scope) and iat/nbf/exp
hold; so azure-identity's credential against the emulator's authority signs a client in unchanged. Azurite does
not know Azure RBAC: every valid storage token may read and write (the emulator's own /blob/ plane enforces roles).

Accounts are the world's storage accounts (AZURITE_ACCOUNTS, one random key each, kept in the state); URLs are path
style: https://127.0.0.1:<port>/<account>/<container>/<blob>. A restore as files whose container URL is such a URL
writes its files here (engine._restore_files).
"""
import base64
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from urllib.parse import urlsplit

from .clusters import _port_free, free_port as _free_port
from .util import now

log = logging.getLogger("dpemulator.azurite")

PID_FILE = "azurite.pid"
STORAGE_AUDIENCE = "https://storage.azure.com"
START_TIMEOUT = 60


def find_binary():
    """$DPEMULATOR_AZURITE, else the repository's .cache/azurite (scripts/ensure-azurite.sh), else PATH."""
    explicit = os.environ.get("DPEMULATOR_AZURITE")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    candidate = os.path.join(repo, ".cache", "azurite", "node_modules", ".bin", "azurite-blob")
    if os.access(candidate, os.X_OK):
        return candidate
    return shutil.which("azurite-blob")


def stop_pid_file(state_dir, timeout=10.0):
    """Stop an Azurite left running (the emulator was killed): SIGTERM by its pid file, SIGKILL after `timeout`."""
    path = os.path.join(state_dir, PID_FILE)
    try:
        with open(path) as fh:
            pid = int(fh.read().strip() or 0)
    except (OSError, ValueError):
        return False
    stopped = False
    if pid > 0 and _alive(pid):
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            pass
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        stopped = True
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    return stopped


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:   # a zombie child of ours counts as gone
        done, _status = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


class _TokenCredential:
    """A TokenCredential of the emulator itself: tokens for the storage audience signed by its token service (what
    the backup service's identity would get from AAD)."""

    def __init__(self, app, principal):
        self.app = app
        self.principal = principal

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken
        token, exp = self.app.tokens.issue(self.principal, STORAGE_AUDIENCE, 3600)
        return AccessToken(token, exp)


class Azurite:
    def __init__(self, app):
        self.app = app
        self.dir = os.path.join(app.state_dir, "azurite")
        self.proc = None
        self.port = None
        self.binary = None

    @property
    def running(self):
        return self.port is not None

    @property
    def base_url(self):
        return "https://127.0.0.1:%d" % self.port if self.port else None

    def container_url(self, account, container):
        return "%s/%s/%s" % (self.base_url, account.lower(), container)

    def serves(self, url):
        """Whether a container URL names this Azurite."""
        if not self.port:
            return False
        parts = urlsplit(url or "")
        return (parts.hostname or "") in ("127.0.0.1", "localhost") and parts.port == self.port

    # ------------------------------------------------------------------ lifecycle
    def _keys(self):
        keys = self.app.state.meta.setdefault("azurite_keys", {})
        for acct in self.app.world.storage_accounts.values():
            keys.setdefault(acct["name"].lower(), base64.b64encode(os.urandom(64)).decode())
        return keys

    def start(self):
        self.binary = find_binary()
        if not self.binary:
            log.warning("Azurite not found (run scripts/ensure-azurite.sh or set DPEMULATOR_AZURITE): "
                        "restores as files use the emulator's own blob plane only")
            return False
        if not self.app.world.storage_accounts:
            return False
        stop_pid_file(self.app.state_dir)           # one left from a killed emulator holds our port
        os.makedirs(self.dir, exist_ok=True)
        keys = self._keys()
        for key in keys.values():
            self.app.register_secret(key)
        port = self.app.state.meta.get("azurite_port")
        if not port or not _port_free(port):
            port = _free_port()
        env = dict(os.environ, AZURITE_ACCOUNTS=";".join("%s:%s" % kv for kv in sorted(keys.items())))
        argv = [self.binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", self.dir,
                "--cert", self.app.cert_file, "--key", self.app.key_file, "--oauth", "basic",
                "--skipApiVersionCheck", "--disableProductStyleUrl"]
        # Azurite's access log would fill azurite.log; its debug log is there for when something puzzles.
        argv += ["--debug", os.path.join(self.dir, "debug.log")] if os.environ.get("DPEMULATOR_AZURITE_DEBUG") \
            else ["--silent"]
        logf = open(os.path.join(self.dir, "azurite.log"), "ab")
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
                                         start_new_session=True, cwd=self.dir)
        finally:
            logf.close()
        with open(os.path.join(self.app.state_dir, PID_FILE), "w") as fh:
            fh.write("%d\n" % self.proc.pid)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("Azurite exited with %s at start; see %s/azurite.log" % (self.proc.returncode,
                                                                                          self.dir))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("Azurite did not listen on 127.0.0.1:%d within %ds" % (port, START_TIMEOUT))
        self.port = port
        self.app.state.meta["azurite_port"] = port
        for acct in self.app.world.storage_accounts.values():
            for container in self.app.storage.containers(acct["name"]) or acct["containers"]:
                self.ensure_container(acct["name"], container)
        log.info("Azurite %s on %s", self.binary, self.base_url)
        return True

    def stop(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait(5)
            self.proc = None
        try:
            os.unlink(os.path.join(self.app.state_dir, PID_FILE))
        except FileNotFoundError:
            pass
        self.port = None

    # ------------------------------------------------------------------ data plane (as the backup service)
    def _service(self, account):
        from azure.storage.blob import BlobServiceClient
        vault = next(iter(self.app.world.vaults.values()), None)
        principal = {"object_id": vault["principal_id"] if vault else "00000000-0000-0000-0000-000000000000",
                     "client_id": "dpemulator-backup-service"}
        return BlobServiceClient("%s/%s" % (self.base_url, account.lower()),
                                 credential=_TokenCredential(self.app, principal), connection_verify=self.app.ca_file)

    def ensure_container(self, account, container):
        from azure.core.exceptions import ResourceExistsError
        try:
            self._service(account).create_container(container)
        except ResourceExistsError:
            pass

    def upload_file(self, account, container, blob, path, content_type="application/octet-stream"):
        """Upload a local file as a block blob with its Content-MD5 (as the SDK's upload_blob, in 4 MiB blocks)."""
        from azure.storage.blob import ContentSettings
        md5 = hashlib.md5()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                md5.update(chunk)
        size = os.path.getsize(path)
        client = self._service(account).get_blob_client(container, blob)
        with open(path, "rb") as fh:
            client.upload_blob(fh, length=size, overwrite=True, max_concurrency=2,
                               content_settings=ContentSettings(content_type=content_type,
                                                                content_md5=bytearray(md5.digest())))
        log.info("wrote %s/%s/%s to Azurite (%d bytes)", account, container, blob, size)
        return {"size": size, "md5": md5.hexdigest(), "written": now()}

    def delete_blob(self, account, container, blob):
        from azure.core.exceptions import ResourceNotFoundError
        try:
            self._service(account).get_blob_client(container, blob).delete_blob()
        except ResourceNotFoundError:
            pass

    def list_blobs(self, account, container, prefix=None):
        return sorted(b.name for b in self._service(account).get_container_client(container)
                      .list_blobs(name_starts_with=prefix))

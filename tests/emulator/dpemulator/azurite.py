"""Azurite (Microsoft's Azure Storage emulator, npm package `azurite`) as the emulator's second blob data plane.

The emulator starts `azurite-blob` on 127.0.0.1 with its own certificate (so clients trust it through the same
ca.pem) and `--oauth basic`, and stops it with itself. Basic OAuth decodes the bearer token without checking its
signature and accepts it when `iss` starts with https://sts.windows.net/ (ours: https://sts.windows.net/<tenant>/),
`aud` is https://storage.azure.com (ours, from the emulator's token endpoints for the storage scope) and iat/nbf/exp
hold; so azure-identity's credential against the emulator's authority signs a client in unchanged. Azurite does
not know Azure RBAC: every valid storage token may read and write. So clients do not talk to Azurite itself but to
its authorizing front, blobgate.py (its own process, started and stopped with Azurite), which checks the token's
signature and the principal's blob data role as Azure does and then passes the request through. The backup
service's own writes (a restore as files) go to Azurite directly: the restore's rules checked its role already.

Accounts are the world's storage accounts (AZURITE_ACCOUNTS, one random key each, kept in the state); URLs are path
style: https://127.0.0.1:<port>/<account>/<container>/<blob>. A restore as files whose container URL is such a URL
writes its files here (engine._restore_files).
"""
import base64
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

from .clusters import _port_free, free_port as _free_port
from .util import now

log = logging.getLogger("dpemulator.azurite")

PID_FILE = "azurite.pid"
GATE_PID_FILE = "blobgate.pid"
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
    """Stop an Azurite and its gate left running (the emulator was killed): SIGTERM by their pid files, SIGKILL
    after `timeout`. True when one was running."""
    gate = _stop_pid_file(os.path.join(state_dir, GATE_PID_FILE), timeout)
    return _stop_pid_file(os.path.join(state_dir, PID_FILE), timeout) or gate


def _stop_pid_file(path, timeout):
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


def _stop_proc(proc, pid_file):
    """SIGTERM the process group of our child `proc` (SIGKILL after 10 s) and remove its pid file."""
    if proc is not None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait(5)
    try:
        os.unlink(pid_file)
    except FileNotFoundError:
        pass


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
        self.gate = None
        self.gate_port = None
        self.binary = None

    @property
    def running(self):
        return self.port is not None

    @property
    def base_url(self):
        """What clients use (DPEMULATOR_BLOB_URL): the authorizing gate in front of Azurite."""
        return "https://127.0.0.1:%d" % self.gate_port if self.gate_port else None

    @property
    def upstream_url(self):
        """Azurite itself: the backup service's writes (no RBAC check, as the restore's rules did it)."""
        return "https://127.0.0.1:%d" % self.port if self.port else None

    def container_url(self, account, container):
        return "%s/%s/%s" % (self.base_url, account.lower(), container)

    def serves(self, url):
        """Whether a container URL names this Azurite."""
        if not self.port:
            return False
        parts = urlsplit(url or "")
        return (parts.hostname or "") in ("127.0.0.1", "localhost") and parts.port in (self.port, self.gate_port)

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
        self.proc = self._launch("Azurite", argv, env, "azurite.log", PID_FILE, port)
        self.port = port
        self.app.state.meta["azurite_port"] = port
        self._start_gate()
        for acct in self.app.world.storage_accounts.values():
            for container in self.app.storage.containers(acct["name"]) or acct["containers"]:
                self.ensure_container(acct["name"], container)
        log.info("Azurite %s on %s", self.binary, self.base_url)
        return True

    def _launch(self, what, argv, env, log_name, pid_name, port):
        """Start `argv` in its own session, record its pid in `pid_name` and wait until it listens on `port`."""
        logf = open(os.path.join(self.dir, log_name), "ab")
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
                                    start_new_session=True, cwd=self.dir)
        finally:
            logf.close()
        with open(os.path.join(self.app.state_dir, pid_name), "w") as fh:
            fh.write("%d\n" % proc.pid)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                _stop_proc(proc, os.path.join(self.app.state_dir, pid_name))
                raise RuntimeError("%s exited with %s at start; see %s/%s" % (what, proc.returncode, self.dir,
                                                                            log_name))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return proc
            except OSError:
                time.sleep(0.1)
        _stop_proc(proc, os.path.join(self.app.state_dir, pid_name))
        self.stop()
        raise RuntimeError("%s did not listen on 127.0.0.1:%d within %ds" % (what, port, START_TIMEOUT))

    def _start_gate(self):
        """The authorizing front (blobgate.py): a Python process of its own, so that a 100 MB download through it
        does not compete with the emulator's threads for the GIL."""
        port = self.app.state.meta.get("blobgate_port")
        if not port or not _port_free(port):
            port = _free_port()
        config = {"port": port, "upstream_port": self.port, "cert_file": self.app.cert_file,
                  "key_file": self.app.key_file, "ca_file": self.app.ca_file, "state_file": self.app.state.path,
                  "tenant": self.app.world.tenant_id, "authority": self.app.base_url,
                  "accounts": {a["name"].lower(): a["id"] for a in self.app.world.storage_accounts.values()}}
        config_file = os.path.join(self.dir, "blobgate.json")
        with open(config_file, "w") as fh:
            json.dump(config, fh)
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_parent,
                                                                        os.environ.get("PYTHONPATH")])))
        self.gate = self._launch("the Azurite gate", [sys.executable, "-m", "dpemulator.blobgate", config_file], env,
                                 "blobgate.log", GATE_PID_FILE, port)
        self.gate_port = port
        self.app.state.meta["blobgate_port"] = port

    def stop(self):
        _stop_proc(self.gate, os.path.join(self.app.state_dir, GATE_PID_FILE))
        _stop_proc(self.proc, os.path.join(self.app.state_dir, PID_FILE))
        self.gate = self.proc = None
        self.gate_port = self.port = None

    # ------------------------------------------------------------------ data plane (as the backup service)
    def _service(self, account):
        from azure.storage.blob import BlobServiceClient
        vault = next(iter(self.app.world.vaults.values()), None)
        principal = {"object_id": vault["principal_id"] if vault else "00000000-0000-0000-0000-000000000000",
                     "client_id": "dpemulator-backup-service"}
        return BlobServiceClient("%s/%s" % (self.upstream_url, account.lower()),
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

"""Helpers of the emulator tests (a uniquely named module so that `from dpemu_helpers import ...` never
picks another test tree's conftest): the Emulator handle, request builders."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import requests

WORLDS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dpemulator", "worlds")
DEMO = os.path.join(WORLDS, "demo.yml")
GRANTED = os.path.join(WORLDS, "granted.yml")
VAULT_RG, VAULT = "testBkpVaultRG", "TestBkpVault"
FAST = ["operation_duration=0.4", "job_duration=0.5", "rehydration_duration=1.0", "retry_after=1", "page_size=5"]
API = "2024-04-01"


def cli(*args, check=True, timeout=240):
    proc = subprocess.run([sys.executable, "-m", "dpemulator.cli"] + list(args), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError("dpemulator %s failed (%d):\n%s\n%s" % (args, proc.returncode, proc.stdout, proc.stderr))
    return proc


def make_state_dir():
    # Not under pytest's tmp_path: its parents are 0700 and the postgres OS user must traverse them.
    base = os.path.join(tempfile.gettempdir(), "dpemulator-tests")
    os.makedirs(base, exist_ok=True)
    os.chmod(base, 0o755)
    return tempfile.mkdtemp(prefix="state-", dir=base)


class Emulator:
    """A running emulator: env.json values, an authenticated ARM session, control calls, helpers."""

    def __init__(self, state, world, knobs=FAST):
        self.state, self.world, self.knobs = state, world, list(knobs)
        self.pid = None

    def start(self):
        args = ["start", "--state", self.state, "--world", self.world]
        for k in self.knobs:
            args += ["--knob", k]
        cli(*args)
        self.load()
        return self

    def load(self):
        with open(os.path.join(self.state, "env.json")) as fh:
            self.env = json.load(fh)
        self.pid = int(self.env["DPEMULATOR_PID"])
        self.url = self.env["DPEMULATOR_URL"]
        self.ca = self.env["REQUESTS_CA_BUNDLE"]
        self.sub = self.env["AZURE_SUBSCRIPTION_ID"]
        self.tenant = self.env["AZURE_TENANT"]
        self._tokens = {}

    def stop(self):
        t0 = time.monotonic()
        cli("stop", "--state", self.state, check=False)
        print("\nstopped emulator %s in %.1fs" % (self.state, time.monotonic() - t0))
        if self.pid:
            try:          # belt and braces: never leave an emulator behind
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -------------------------------------------------------------------- HTTP helpers
    def session(self):
        s = requests.Session()
        s.verify = self.ca
        return s

    def token(self, scope="https://management.azure.com/.default", client_id=None, secret=None):
        key = (scope, client_id)
        if key not in self._tokens:
            r = requests.post("%s/%s/oauth2/v2.0/token" % (self.url, self.tenant), verify=self.ca,
                              data={"grant_type": "client_credentials", "client_id": client_id or
                                    self.env["AZURE_CLIENT_ID"], "client_secret": secret or self.env["AZURE_SECRET"],
                                    "scope": scope})
            assert r.status_code == 200, r.text
            self._tokens[key] = r.json()["access_token"]
        return self._tokens[key]

    def arm(self, method, path, body=None, params=None, token=None, headers=None, **kw):
        params = dict(params or {})
        if "api-version" not in params and "api-version" not in path:
            params["api-version"] = API
        headers = dict(headers or {}, Authorization="Bearer " + (token or self.token()))
        url = path if path.startswith("https://") else self.url + path
        return requests.request(method, url, json=body, params=params, headers=headers, verify=self.ca,
                                timeout=60, **kw)

    def control(self, method, path, body=None):
        r = requests.request(method, self.url + "/_emulator" + path, json=body, verify=self.ca, timeout=300,
                             headers={"Authorization": "Bearer " + self.env["DPEMULATOR_CONTROL_TOKEN"]})
        assert r.status_code < 300, r.text
        return r.json()

    def set_knobs(self, **knobs):
        return self.control("PATCH", "/knobs", knobs)

    # -------------------------------------------------------------------- world helpers
    @property
    def bv(self):
        return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataProtection/backupVaults/%s" % (
            self.sub, VAULT_RG, VAULT)

    def bi(self, which="empdb11"):
        for b in self.control("GET", "/backup-instances")["value"]:
            if (b["database"] or b["server"]) == which:
                return b
        raise KeyError(which)

    def server_id(self, name, rg="targetrg", kind="servers"):
        return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DBforPostgreSQL/%s/%s" % (self.sub, rg, kind,
                                                                                                 name)

    def servers(self):
        return self.control("GET", "/servers")

    def latest_point(self, which="empdb11"):
        r = self.arm("GET", self.bi(which)["id"] + "/recoveryPoints")
        assert r.status_code == 200, r.text
        return max(r.json()["value"], key=lambda p: p["properties"]["recoveryPointTime"])

    def poll_operation(self, response, timeout=60):
        assert response.status_code == 202, response.text
        url = response.headers["Azure-AsyncOperation"]
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = self.arm("GET", url)
            assert r.status_code == 200, r.text
            body = r.json()
            if body["status"].lower() != "inprogress":
                return body
            time.sleep(0.2)
        raise AssertionError("operation did not finish")

    def wait_job(self, job_id, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = self.arm("GET", job_id if job_id.startswith("/") else self.bv + "/backupJobs/" + job_id)
            assert r.status_code == 200, r.text
            job = r.json()
            if job["properties"]["status"] in ("Completed", "Failed", "Cancelled"):
                return job
            time.sleep(0.2)
        raise AssertionError("job did not finish")


def db_request(emu, rp_id, db, server="targetossserver", secret="targetossserver-conn", kv="targetosskv",
               store="VaultStore", rehydration=None, secret_uri=None):
    """The restore-as-database body exactly as reference §2 (the CLI's shape)."""
    srv = emu.server_id(server)
    body = {"objectType": "AzureBackupRecoveryPointBasedRestoreRequest", "recoveryPointId": rp_id,
            "sourceDataStoreType": store,
            "restoreTargetInfo": {
                "objectType": "RestoreTargetInfo", "recoveryOption": "FailIfExists", "restoreLocation": "westeurope",
                "datasourceInfo": {"objectType": "Datasource", "resourceID": srv + "/databases/" + db,
                                   "resourceName": db, "resourceType": "Microsoft.DBforPostgreSQL/servers/databases",
                                   "datasourceType": "Microsoft.DBforPostgreSQL/servers/databases", "resourceUri": "",
                                   "resourceLocation": "westeurope"},
                "datasourceSetInfo": {"objectType": "DatasourceSet", "resourceID": srv, "resourceName": server,
                                      "resourceType": "Microsoft.DBforPostgreSQL/servers",
                                      "datasourceType": "Microsoft.DBforPostgreSQL/servers/databases",
                                      "resourceUri": "", "resourceLocation": "westeurope"},
                "datasourceAuthCredentials": {"objectType": "SecretStoreBasedAuthCredentials", "secretStoreResource": {
                    "secretStoreType": "AzureKeyVault",
                    "uri": secret_uri or "https://%s.vault.azure.net/secrets/%s" % (kv, secret)}}}}
    if rehydration:
        body.update(objectType="AzureBackupRestoreWithRehydrationRequest", rehydrationPriority="Standard",
                    rehydrationRetentionDuration=rehydration)
    return body


def files_request(emu, rp_id, prefix, container="restored-files", account="targetossstorage", store="VaultStore",
                  rehydration=None):
    body = {"objectType": "AzureBackupRecoveryPointBasedRestoreRequest", "recoveryPointId": rp_id,
            "sourceDataStoreType": store,
            "restoreTargetInfo": {"objectType": "RestoreFilesTargetInfo", "recoveryOption": "FailIfExists",
                                  "restoreLocation": "westeurope",
                                  "targetDetails": {"url": "%s/blob/%s/%s" % (emu.url, account, container),
                                                    "filePrefix": prefix, "restoreTargetLocationType": "AzureBlobs"}}}
    if rehydration:
        body.update(objectType="AzureBackupRestoreWithRehydrationRequest", rehydrationPriority="High",
                    rehydrationRetentionDuration=rehydration)
    return body


def unique(prefix="db"):
    return "%s_%s" % (prefix, uuid.uuid4().hex[:8])


def start_emulator(world):
    emu = Emulator(make_state_dir(), world)
    try:
        emu.start()
    except BaseException:
        emu.stop()
        raise
    return emu

"""The emulator process: wires state, world, tokens, providers, engine and clusters together,
serves HTTPS, writes env.sh/env.json, and shuts down cleanly on SIGTERM/SIGINT."""
import json
import logging
import os
import re
import signal
import sys
import threading
import time

from . import postgres as pg
from . import tls
from .aad import AadProvider
from .arm_authorization import AuthorizationProvider
from .arm_crr import CrossRegionProvider
from .arm_dataprotection import DataProtectionProvider
from .arm_keyvault import KeyVaultProvider
from .arm_postgresql import PostgresProvider
from .arm_resourcegraph import ResourceGraphProvider
from .arm_storage import StorageProvider
from .azurite import Azurite
from .clusters import Clusters
from .control import ControlApi
from .engine import Engine
from .faults import Counters, FaultInjector, Throttle
from .logsafe import SecretRegistry, setup_logging
from .server import EmulatorHTTPServer, Pipeline, Router, make_ssl_context
from .state import State, merge_knobs
from .tokens import ARM_AUDIENCES, KV_AUDIENCES, STORAGE_AUDIENCES, TokenService
from .util import norm_id, now
from .world import load_world

log = logging.getLogger("dpemulator")

PID_FILE = "emulator.pid"
LOG_FILE = "emulator.log"


class App:
    def __init__(self, state_dir, world_path=None, pg_mode="managed"):
        self.state_dir = os.path.abspath(state_dir)
        os.makedirs(self.state_dir, exist_ok=True)
        self.secrets = SecretRegistry()
        self.state = State(self.state_dir)
        meta = self.state.meta
        world_path = world_path or meta.get("world_path")
        if not world_path:
            raise SystemExit("no world file: give --world (the state dir has none yet)")
        self.world = load_world(world_path)
        meta["world_path"] = self.world.path
        meta.setdefault("created", now())
        self.pg_mode = pg_mode
        self.ca_file, self.cert_file, self.key_file = tls.ensure_certs(self.state_dir)
        self.tokens = TokenService(meta["signing_key"], self.world.tenant_id)
        self.counters = Counters()
        self.faults = FaultInjector(self.state)
        self.throttle = Throttle(lambda: self.state.knobs)
        self.base_url = None
        self._register_known_secrets()
        self.router = Router()
        self.pipeline = Pipeline(self)
        self.control = ControlApi(self)
        self.aad = AadProvider(self)
        self.authorization = AuthorizationProvider(self)
        self.keyvault = KeyVaultProvider(self)
        self.storage = StorageProvider(self)
        self.postgres = PostgresProvider(self)
        self.dataprotection = DataProtectionProvider(self)
        self.cross_region = CrossRegionProvider(self)
        self.resource_graph = ResourceGraphProvider(self)
        for provider in (self.control, self.aad, self.authorization, self.keyvault, self.storage, self.postgres,
                         self.dataprotection, self.cross_region, self.resource_graph):
            provider.register(self.router)
        self.engine = Engine(self)
        self.clusters = Clusters(self, pg_mode)
        self.azurite = Azurite(self)
        self.httpd = None

    # ----------------------------------------------------------------------------- helpers for providers
    @property
    def arm_audiences(self):
        return ARM_AUDIENCES + (self.base_url.lower(),)

    kv_audiences = KV_AUDIENCES
    storage_audiences = STORAGE_AUDIENCES

    def register_secret(self, value):
        self.secrets.add(value)

    def _register_known_secrets(self):
        self.secrets.add(self.state.meta["control_token"])
        self.secrets.add(self.state.meta["identity_header"])
        for p in self.world.principals.values():
            self.secrets.add(p.get("client_secret"))
            self.secrets.add(p.get("password"))           # users
        for s in self.world.servers.values():
            self.secrets.add(s["admin_password"])
            for r in s["roles"]:
                self.secrets.add(str(r.get("password")))
        for kv in self.state.data["secrets"].values():
            for entry in kv.values():
                for v in entry["versions"]:
                    self.secrets.add(v["value"])

    def connection_string(self, conn):
        """A world `connection:` -> the ADO.NET string the portal shows (Azure host name, user@server)."""
        srv = self.world.servers[str(conn["server"]).lower()]
        user = conn.get("user", srv["admin_user"])
        password = str(conn.get("password", srv["admin_password"]))
        login = "%s@%s" % (user, srv["name"]) if srv["kind"] == "single" else user
        return pg.build_ado_connection_string("%s.postgres.database.azure.com" % srv["name"].lower(), 5432,
                                              conn.get("database", "postgres"), login, password,
                                              conn.get("ssl_mode", "Require"))

    def resource_exists(self, scope):
        """Known resources must exist for a role assignment scope; other resource types are accepted."""
        n = norm_id(scope)
        if n == "/":
            return True
        m = re.match(r"^/subscriptions/([^/]+)(?:/resourcegroups/([^/]+))?(/providers/.*)?$", n)
        if not m:
            return False
        sub, rg, rest = m.groups()
        if sub not in self.world.subscriptions:
            return False
        if rg and (sub, rg) not in self.world.resource_groups:
            return False
        if not rest:
            return True
        known = set()
        for coll in (self.world.vaults.values(), self.world.servers.values(), self.world.key_vaults.values(),
                     self.world.storage_accounts.values()):
            known.update(norm_id(r["id"]) for r in coll)
        for acct in self.world.storage_accounts.values():
            for c in self.storage.containers(acct["name"]):
                known.add(norm_id("%s/blobServices/default/containers/%s" % (acct["id"], c)))
        if n in known:
            return True
        for k in known:
            if n.startswith(k + "/"):
                return True          # a child of a known resource (database, secret, ...)
        typed = re.match(r"^.*/providers/(microsoft\.(dataprotection|dbforpostgresql|keyvault|storage))/", n)
        return typed is None

    # ----------------------------------------------------------------------------- lifecycle
    def seed_once(self):
        meta = self.state.meta
        if meta.get("seeded"):
            return
        self.clusters.seed()
        with self.state.tx() as data:
            self.authorization.seed(data)
            self.keyvault.seed(data)
            self.storage.seed(data)
            self.dataprotection.seed(data)
        self.dataprotection.initial_backups()
        meta["seeded"] = True
        self.state.save()

    def bind(self, port=None):
        ctx = make_ssl_context(self.cert_file, self.key_file)
        want = port or self.state.meta.get("http_port") or 0
        try:
            self.httpd = EmulatorHTTPServer(("127.0.0.1", int(want)), self, ctx)
        except OSError:
            if port:
                raise
            self.httpd = EmulatorHTTPServer(("127.0.0.1", 0), self, ctx)    # the old port is taken: a new one
        actual = self.httpd.server_address[1]
        self.state.meta["http_port"] = actual
        self.base_url = "https://127.0.0.1:%d" % actual
        self.state.save()

    def env(self):
        p = self.world.default_principal or {}
        return {
            "AZURE_CLOUD_ENVIRONMENT": self.base_url,
            "AZURE_SUBSCRIPTION_ID": self.world.default_subscription,
            "AZURE_CLIENT_ID": p.get("client_id", ""),
            "AZURE_SECRET": p.get("client_secret", ""),
            "AZURE_TENANT": self.world.tenant_id,
            "REQUESTS_CA_BUNDLE": self.ca_file,
            # The collection's token cache, per emulator: another emulator (a new state, maybe the same port) signs
            # its tokens with another key.
            "AZURE_BACKUP_CACHE_DIR": os.path.join(self.state_dir, "client-cache"),
            "DPEMULATOR_URL": self.base_url,
            "DPEMULATOR_STATE": self.state_dir,
            # Azurite's blob endpoint (path style: <url><account>/<container>), when it runs
            **({"DPEMULATOR_BLOB_URL": self.azurite.base_url + "/"} if self.azurite.running else {}),
        }

    def user_env(self):
        """The world's default user, for tests of the password grant (AZURE_AD_USER / AZURE_PASSWORD). In env.json
        only: env.sh exports the service principal alone, so that it stays the credential a client picks."""
        user = self.world.default_user
        if user is None:
            return {}
        return {"DPEMULATOR_AD_USER": user["user_principal_name"], "DPEMULATOR_AD_PASSWORD": user["password"]}

    def write_env_files(self):
        env = self.env()
        extra = {"DPEMULATOR_CONTROL_TOKEN": self.state.meta["control_token"],
                 "DPEMULATOR_IDENTITY_ENDPOINT": self.base_url + "/msi/token",
                 "DPEMULATOR_IDENTITY_HEADER": self.state.meta["identity_header"],
                 "DPEMULATOR_PID": os.getpid(),
                 "DPEMULATOR_WORLD": self.world.path}
        extra.update(self.user_env())
        # The cloud's /metadata/endpoints document as a file: cloud_environment=<that path> signs in without reading
        # it over HTTP, as a client given the endpoints does (the bench's SDK script).
        cloud_file = os.path.join(self.state_dir, "cloud.json")
        _write_private(cloud_file, json.dumps(self.aad.cloud(), indent=2) + "\n")
        extra["DPEMULATOR_CLOUD_FILE"] = cloud_file
        _write_private(os.path.join(self.state_dir, "env.sh"),
                       "# Written by dpemulator; source it: . %s/env.sh\n" % self.state_dir +
                       "".join("export %s=%s\n" % (k, _shell_quote(v)) for k, v in env.items()) +
                       "export DPEMULATOR_CONTROL_TOKEN=%s\n" % _shell_quote(extra["DPEMULATOR_CONTROL_TOKEN"]))
        _write_private(os.path.join(self.state_dir, "env.json"), json.dumps(dict(env, **extra), indent=2) + "\n")

    def run(self, port=None, knobs=None, ready=None):
        """Start everything and serve until SIGTERM/SIGINT (or `ready` caller sets the stop event)."""
        stop = threading.Event()
        self.stop_event = stop
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
        _write_private(os.path.join(self.state_dir, PID_FILE), "%d\n" % os.getpid())
        if knobs:
            with self.state.tx() as data:
                data["knobs"] = merge_knobs(data["knobs"], knobs)
        self.bind(port)
        serving = False
        log.info("starting PostgreSQL (%s mode)", self.pg_mode)
        try:
            t0 = time.monotonic()
            self.clusters.start_all()
            log.info("PostgreSQL up in %.1fs", time.monotonic() - t0)
            t0 = time.monotonic()
            self.seed_once()
            log.info("world ready in %.1fs", time.monotonic() - t0)
            t0 = time.monotonic()
            if self.azurite.start():
                log.info("Azurite up in %.1fs", time.monotonic() - t0)
            resumed = self.engine.resume()
            if resumed:
                log.info("resumed %d in-flight job(s)", resumed)
            server_thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                             name="http", daemon=True)
            server_thread.start()
            serving = True
            self.write_env_files()
            log.info("dpemulator ready on %s (state %s)", self.base_url, self.state_dir)
            if ready:
                ready(self)
            while not stop.wait(1.0):
                pass
        except BaseException:
            log.exception("the emulator failed")
            raise
        finally:
            log.info("stopping")
            t0 = time.monotonic()
            if self.httpd:
                if serving:     # shutdown() waits for serve_forever(): only call it when that runs
                    self.httpd.shutdown()
                self.httpd.server_close()
            self.engine.stop()
            self.state.save()
            self.azurite.stop()
            self.clusters.stop_all()
            for name in (PID_FILE,):
                try:
                    os.unlink(os.path.join(self.state_dir, name))
                except FileNotFoundError:
                    pass
            log.info("stopped in %.1fs", time.monotonic() - t0)


def _shell_quote(value):
    value = str(value)
    if re.fullmatch(r"[A-Za-z0-9_./:@%+=,-]*", value):
        return value
    return "'" + value.replace("'", "'\"'\"'") + "'"


def _write_private(path, text):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def run_foreground(state_dir, world_path, port=None, pg_mode="managed", knobs=None):
    app = App(state_dir, world_path, pg_mode)
    setup_logging(app.secrets, sys.stderr)
    app.run(port=port, knobs=knobs)

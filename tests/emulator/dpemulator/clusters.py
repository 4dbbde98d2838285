"""The real PostgreSQL servers behind the world's servers: managed clusters (ClusterManager, one per
declared server, ports kept in the state so a restart reuses them) or attached servers."""
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor

from . import postgres as pg

log = logging.getLogger("dpemulator.clusters")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Clusters:
    def __init__(self, app, mode="managed"):
        self.app = app
        self.mode = mode
        self.base_dir = os.path.join(app.state_dir, "pg")
        self.manager = None
        self.servers = {}

    def _manager(self):
        if self.manager is None:
            os.makedirs(self.base_dir, exist_ok=True)
            # The postgres OS user must traverse the state dir (its files stay 0600).
            for path in (self.app.state_dir, self.base_dir):
                os.chmod(path, os.stat(path).st_mode | 0o711)
            self.manager = pg.ClusterManager(self.base_dir, tls_cert=self.app.cert_file, tls_key=self.app.key_file)
        return self.manager

    def _start_one(self, srv):
        name = srv["name"].lower()
        attach = srv.get("attach")
        if attach or self.mode == "attach":
            if not attach:
                raise ValueError("--pg-mode attach needs 'attach: {host, port}' on server %s" % srv["name"])
            return name, pg.attach(attach.get("host", "127.0.0.1"), int(attach["port"]),
                                   attach.get("admin_user", srv["admin_user"]),
                                   str(attach.get("admin_password", srv["admin_password"])))
        port = self.app.state.meta.get("pg_ports", {}).get(name)
        for attempt in range(4):
            if port is None or not self.manager.is_running(name) and not _port_free(port):
                port = free_port()
            try:
                return name, self.manager.ensure(name, port, srv["admin_user"], srv["admin_password"])
            except pg.PgError as exc:
                # Another process may grab a free port between our check and the postmaster's bind.
                if attempt == 3 or self.manager.is_running(name):
                    raise
                log.warning("cluster %s did not start on port %d (%s); trying another port", name, port, exc)
                port = None

    def start_all(self):
        servers = list(self.app.world.servers.values())
        if any(not s.get("attach") for s in servers) and self.mode == "managed":
            self._manager()
        with ThreadPoolExecutor(max_workers=4) as pool:
            for name, server in pool.map(self._start_one, servers):
                self.servers[name] = server
                if not self.app.world.servers[name].get("attach"):
                    self.app.state.meta.setdefault("pg_ports", {})[name] = server.port
        self.app.state.save()

    def seed(self):
        """First start: the world's databases (with sample rows) and extra login roles."""
        for srv in self.app.world.servers.values():
            server = self.server(srv["name"])
            for db in srv["databases"]:
                if not pg.database_exists(server, db["name"]):
                    if db["sample_rows"]:
                        pg.create_sample_database(server, db["name"], db["sample_rows"])
                    else:
                        pg.create_database(server, db["name"])
            for role in srv["roles"]:
                pg.ensure_role(server, role["name"], str(role["password"]), createdb=bool(role.get("createdb")),
                               superuser=bool(role.get("superuser")))

    def server(self, name):
        return self.servers[name.lower()]

    def stop_all(self):
        if self.manager is not None:
            try:
                self.manager.stop_all()
            except Exception:
                log.exception("stopping the PostgreSQL clusters failed")


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False

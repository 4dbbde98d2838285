"""Real PostgreSQL for the emulator: managed clusters, attached servers, dump/restore, ADO.NET strings.

Everything here drives the real PostgreSQL binaries (initdb, pg_ctl, psql, createdb, pg_dump,
pg_restore) through ``subprocess`` with argument lists (never a shell).  Passwords are handed to
child processes only through the environment (``PGPASSWORD``) or a short-lived 0600 file (initdb's
``--pwfile``), never on a command line, and no exception text contains a password.

Stable interface (the HTTP/ARM layer calls exactly this)::

    class PostgresUnavailable(RuntimeError)   # binaries missing; the message says what to install
    class LoginFailed(Exception)              # bad user/password; .reason = server text (no password)
    class PgError(Exception)                  # anything else; .kind says which (see below)
        DatabaseExists(PgError)       kind 'exists'      -> UserErrorDatabaseNameAlreadyInUse
        DatabaseNotFound(PgError)     kind 'not_found'   -> UserErrorDBNotFound
        PermissionDenied(PgError)     kind 'permission'  -> UserErrorMissingDBPermissions
        ConnectFailed(PgError)        kind 'connect'/'ssl' -> UserErrorServerConnectionClosed / DBNotFound
        (plain PgError                kind 'error' or 'invalid')

    find_pg_bin_dir() -> str
        newest /usr/lib/postgresql/<v>/bin holding initdb; $DPEMULATOR_PG_BIN overrides; else the
        directory of ``initdb`` on PATH; else PostgresUnavailable.

    @dataclass PgServer(host, port, admin_user, admin_password, version, data_dir=None, ssl=False)
        .env(user=None, password=None) -> {PGHOST, PGPORT, PGUSER, PGPASSWORD, PGSSLMODE}
        data_dir is None for an attached (not managed) server.

    class ClusterManager(base_dir, bin_dir=None, tls_cert=None, tls_key=None)
        .ensure(name, port, admin_user, admin_password) -> PgServer
        .stop(name); .stop_all(); .is_running(name) -> bool
        .cluster_dir(name) -> str; .log_path(name) -> str; .names() -> list[str]
        (thread-safe: ensure/stop of one manager are serialised)

    attach(host, port, admin_user, admin_password) -> PgServer
    server_version(server) -> int                  # real major version (15, 16, ...)
    database_exists(server, dbname) -> bool
    list_databases(server) -> list[str]            # sorted; connectable non-template databases
    create_database(server, dbname); drop_database(server, dbname)   # drop: IF EXISTS, WITH (FORCE)
    ensure_role(server, name, password, createdb=False, superuser=False)  # create or update a login role
    run_sql(server, dbname, sql, user=None, password=None) -> str    # psql -X -At -v ON_ERROR_STOP=1
    dump_database(server, dbname, out_path) -> int (bytes)           # pg_dump -Fc as admin
    dump_globals(server, out_path, what) -> int (bytes)              # pg_dumpall roles/tablespaces/schema
    restore_database(host, port, user, password, dbname, dump_path, sslmode='prefer', jobs=1)
    check_login(host, port, user, password, dbname='postgres', sslmode='prefer') -> None
    user_can_create_db(host, port, user, password) -> bool           # rolcreatedb or rolsuper
    parse_ado_connection_string(text) -> dict      # host, port, database, user, password, ssl_mode
    build_ado_connection_string(host, port, database, user, password, ssl_mode='Require') -> str
    create_sample_database(server, dbname, rows)
    table_counts(host, port, user, password, dbname) -> dict[str, int]   # keys 'schema.table'
    scram_verifier(password) -> str               # what PostgreSQL stores for a password

Managed clusters (``ClusterManager``): ``<base_dir>/<name>/`` holds ``data/`` (PGDATA), ``server.log``,
``cluster.json`` (bootstrap user name and port, no password) and the Unix socket.  The server listens on
127.0.0.1 only, TCP logins need a password (scram-sha-256), ``ssl=on`` with the given cert/key
(copied into the data dir), ``fsync=off``.  The Unix socket accepts only ``peer`` logins of the OS
user running the cluster mapped to the bootstrap superuser; the manager uses it to repair the admin
role when ``ensure`` is called with a new admin user or password.  As root, initdb/pg_ctl run through
``runuser -u postgres`` and ``base_dir`` (with its parents) must be traversable by that user.
"""

import base64
import dataclasses
import errno
import glob
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import unicodedata

__all__ = [
    "PostgresUnavailable", "LoginFailed", "PgError", "DatabaseExists", "DatabaseNotFound",
    "PermissionDenied", "ConnectFailed", "find_pg_bin_dir", "PgServer", "ClusterManager", "attach",
    "server_version", "database_exists", "list_databases", "create_database", "drop_database",
    "ensure_role", "run_sql", "dump_database", "dump_globals", "restore_database", "check_login",
    "user_can_create_db", "parse_ado_connection_string", "build_ado_connection_string",
    "create_sample_database", "table_counts", "scram_verifier",
]

PG_OS_USER = "postgres"          # OS user that runs managed clusters when we are root
CONNECT_TIMEOUT = 10             # seconds, PGCONNECT_TIMEOUT for every client
QUICK_TIMEOUT = 120              # seconds for short client commands (psql, createdb)
START_TIMEOUT = 60               # seconds, pg_ctl -t
MAX_IDENTIFIER_BYTES = 63


# --------------------------------------------------------------------------------------------------
# errors

class PostgresUnavailable(RuntimeError):
    """PostgreSQL binaries are missing; the message says what to install."""


class LoginFailed(Exception):
    """The server refused the user/password.  ``reason`` is the server's text (never a password)."""

    def __init__(self, reason):
        super().__init__("login failed: %s" % reason)
        self.reason = reason


class PgError(Exception):
    """Any other PostgreSQL failure.  ``kind``: error, invalid, exists, not_found, permission, connect, ssl."""

    kind = "error"

    def __init__(self, message, kind=None):
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class DatabaseExists(PgError):
    kind = "exists"


class DatabaseNotFound(PgError):
    kind = "not_found"


class PermissionDenied(PgError):
    kind = "permission"


class ConnectFailed(PgError):
    kind = "connect"


_LOGIN_PATTERNS = (
    "password authentication failed",
    "no password supplied",
    "pg_hba.conf rejects",
    "no pg_hba.conf entry",
    "peer authentication failed",
    "is not permitted to log in",
    "scram exchange",
    "invalid password packet",
)
_CONNECT_PATTERNS = (
    "could not connect",
    "connection refused",
    "connection to server",
    "timeout expired",
    "server closed the connection",
    "could not translate host name",
    "no route to host",
    "the database system is starting up",
    "the database system is shutting down",
    "terminating connection",
)
_SSL_PATTERNS = (
    "ssl",
    "certificate",
)


def _scrub(text, *secrets):
    """Remove secrets (and SQL password literals) from a text meant for an exception or a log."""
    text = text or ""
    text = re.sub(r"(?i)(password\s+)'(?:[^']|'')*'", r"\1'***'", text)
    for secret in secrets:
        if not secret:
            continue
        if len(secret) >= 4:
            text = text.replace(secret, "***")
        else:
            text = re.sub(r"(?<![\w])%s(?![\w])" % re.escape(secret), "***", text)
    return text


def _first_error_line(text):
    """The most telling line of libpq/psql stderr (FATAL/ERROR line first), prefix stripped."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    for pattern in (r"(?:FATAL|ERROR|PANIC):\s*(.*)$", r"error:\s*(.*)$"):
        for ln in lines:
            m = re.search(pattern, ln)
            if m and m.group(1):
                return m.group(1)
    return lines[0] if lines else ""


def _classify(stderr, what, password=None, extra_secrets=()):
    """Turn client stderr into LoginFailed or a PgError subclass (password scrubbed)."""
    text = _scrub(stderr, password, *extra_secrets).strip()
    low = text.lower()
    short = _first_error_line(text) or text or "failed"
    if any(p in low for p in _LOGIN_PATTERNS):
        return LoginFailed(short)
    if re.search(r'role "[^"]*" does not exist', low) and "fatal" in low:
        return LoginFailed(short)
    if re.search(r'database "[^"]*" does not exist', low):
        return DatabaseNotFound("%s: %s" % (what, short))
    if "already exists" in low:
        return DatabaseExists("%s: %s" % (what, short))
    if "permission denied" in low or "must be owner" in low or "must be superuser" in low:
        return PermissionDenied("%s: %s" % (what, short))
    if any(p in low for p in _CONNECT_PATTERNS):
        kind = "ssl" if any(p in low for p in _SSL_PATTERNS) else "connect"
        return ConnectFailed("%s: %s" % (what, short), kind=kind)
    if any(p in low for p in _SSL_PATTERNS) and "fatal" not in low and "error:" not in low:
        return ConnectFailed("%s: %s" % (what, short), kind="ssl")
    return PgError("%s: %s" % (what, text or "failed"))


# --------------------------------------------------------------------------------------------------
# binaries

_INSTALL_HINT = ("install PostgreSQL (Debian/Ubuntu: apt-get install postgresql postgresql-client, "
                 "or run scripts/ensure-postgres.sh) or set DPEMULATOR_PG_BIN to a directory "
                 "holding initdb and pg_ctl")
_client_cache = {}


def _version_key(path):
    m = re.search(r"/postgresql/(\d+(?:\.\d+)?)/bin$", path)
    return float(m.group(1)) if m else 0.0


def find_pg_bin_dir():
    """Directory holding initdb/pg_ctl: $DPEMULATOR_PG_BIN, else newest /usr/lib/postgresql/<v>/bin,
    else the directory of ``initdb`` on PATH.  Raises PostgresUnavailable."""
    override = os.environ.get("DPEMULATOR_PG_BIN")
    if override:
        if os.access(os.path.join(override, "initdb"), os.X_OK):
            return os.path.abspath(override)
        raise PostgresUnavailable("DPEMULATOR_PG_BIN=%s has no executable initdb; %s" % (override, _INSTALL_HINT))
    dirs = [os.path.dirname(p) for p in glob.glob("/usr/lib/postgresql/*/bin/initdb") if os.access(p, os.X_OK)]
    if dirs:
        return max(dirs, key=_version_key)
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(os.path.realpath(found))
    raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found; " + _INSTALL_HINT)


def _client_bin(tool):
    """Path of a client tool (psql, pg_dump, ...): the server bin dir first (no Debian perl wrapper,
    same version), else PATH.  Cached."""
    if tool in _client_cache:
        return _client_cache[tool]
    path = None
    try:
        cand = os.path.join(find_pg_bin_dir(), tool)
        if os.access(cand, os.X_OK):
            path = cand
    except PostgresUnavailable:
        pass
    if path is None:
        path = shutil.which(tool)
    if path is None:
        raise PostgresUnavailable("PostgreSQL client tool %r not found; install postgresql-client "
                                  "(apt-get install postgresql-client)" % tool)
    _client_cache[tool] = path
    return path


# --------------------------------------------------------------------------------------------------
# client plumbing

def _conninfo_quote(value):
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _dbarg(dbname):
    """A ``-d`` argument that libpq never re-parses as a connection string or URI."""
    return "dbname=" + _conninfo_quote(dbname)


def _ident(name):
    return '"' + name.replace('"', '""') + '"'


def _literal(value):
    return "'" + str(value).replace("'", "''") + "'"


def _check_dbname(dbname):
    if not isinstance(dbname, str) or not dbname or "\x00" in dbname:
        raise PgError("invalid database name %r" % (dbname,), kind="invalid")
    if len(dbname.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        raise PgError("invalid database name %r: longer than %d bytes" % (dbname, MAX_IDENTIFIER_BYTES),
                      kind="invalid")


def _client_env(host, port, user, password, sslmode="prefer"):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") or k == "PGSSLROOTCERT"}
    env.update({
        "PGHOST": str(host),
        "PGPORT": str(int(port)),
        "PGUSER": str(user),
        "PGSSLMODE": sslmode or "prefer",
        "PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "PGAPPNAME": "dpemulator",
        "PGPASSFILE": "/nonexistent/dpemulator-no-pgpass",
        "PGCLIENTENCODING": "UTF8",
    })
    if password is not None:
        env["PGPASSWORD"] = password
    return env


def _run(argv, env, what, password=None, input_text=None, timeout=QUICK_TIMEOUT, extra_secrets=()):
    """Run a client tool; return stdout; raise LoginFailed / PgError (scrubbed) on failure."""
    try:
        proc = subprocess.run(argv, env=env, input=input_text, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout,
                              stdin=None if input_text is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ConnectFailed("%s: timed out after %ss" % (what, timeout))
    except OSError as exc:
        raise PgError("%s: cannot run %s: %s" % (what, argv[0], exc))
    if proc.returncode != 0:
        raise _classify(proc.stderr, what, password, extra_secrets)
    return proc.stdout


def _psql(host, port, user, password, dbname, sql, what, sslmode="prefer", timeout=QUICK_TIMEOUT,
          extra_secrets=()):
    """psql -X -A -t -q -v ON_ERROR_STOP=1, the SQL on stdin (so it never shows in argv)."""
    argv = [_client_bin("psql"), "-X", "-A", "-t", "-q", "-w", "-v", "ON_ERROR_STOP=1",
            "-d", _dbarg(dbname), "-f", "-"]
    out = _run(argv, _client_env(host, port, user, password, sslmode), what, password,
               input_text=sql, timeout=timeout, extra_secrets=extra_secrets)
    return out[:-1] if out.endswith("\n") else out


# --------------------------------------------------------------------------------------------------
# servers

@dataclasses.dataclass
class PgServer:
    host: str
    port: int
    admin_user: str
    admin_password: str = dataclasses.field(repr=False)
    version: int
    data_dir: "str | None" = None
    ssl: bool = False

    def env(self, user=None, password=None):
        """PG* variables for a subprocess (passwords go through the environment, never argv)."""
        if user is None:
            user = self.admin_user
            if password is None:
                password = self.admin_password
        env = {"PGHOST": str(self.host), "PGPORT": str(self.port), "PGUSER": user, "PGSSLMODE": "prefer"}
        if password is not None:
            env["PGPASSWORD"] = password
        return env


def _admin_sql(server, dbname, sql, what, extra_secrets=()):
    return _psql(server.host, server.port, server.admin_user, server.admin_password, dbname, sql, what,
                 extra_secrets=extra_secrets)


def check_login(host, port, user, password, dbname="postgres", sslmode="prefer"):
    """Raise LoginFailed when user/password are refused; PgError for other failures."""
    _psql(host, port, user, password, dbname, "SELECT 1", "login to %s:%s" % (host, port), sslmode=sslmode)


def attach(host, port, admin_user, admin_password):
    """A server we do not manage: checks the login and reads the version."""
    out = _psql(host, port, admin_user, admin_password, "postgres",
                "SELECT current_setting('server_version_num'), current_setting('ssl')",
                "attach to %s:%s" % (host, port))
    num, ssl = out.strip().split("|")
    return PgServer(host=host, port=int(port), admin_user=admin_user, admin_password=admin_password,
                    version=int(num) // 10000, data_dir=None, ssl=(ssl == "on"))


def server_version(server):
    """Real major version of the running server (e.g. 15)."""
    return int(_admin_sql(server, "postgres", "SHOW server_version_num", "server version").strip()) // 10000


def database_exists(server, dbname):
    _check_dbname(dbname)
    out = _admin_sql(server, "postgres", "SELECT count(*) FROM pg_database WHERE datname = %s" % _literal(dbname),
                     "database_exists")
    return out.strip() == "1"


def list_databases(server):
    out = _admin_sql(server, "postgres",
                     "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY 1",
                     "list databases")
    return [ln for ln in out.split("\n") if ln]


def create_database(server, dbname):
    _check_dbname(dbname)
    _admin_sql(server, "postgres", "CREATE DATABASE %s" % _ident(dbname), "create database %s" % dbname)


def drop_database(server, dbname):
    _check_dbname(dbname)
    _admin_sql(server, "postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % _ident(dbname),
               "drop database %s" % dbname)


def run_sql(server, dbname, sql, user=None, password=None):
    """Run SQL with psql -X -At -v ON_ERROR_STOP=1 (SQL on stdin); return stdout without the last newline."""
    if user is None:
        user, password = server.admin_user, server.admin_password
    return _psql(server.host, server.port, user, password, dbname, sql, "sql on %s" % dbname)


def _saslprep(password):
    # PostgreSQL applies SASLprep; for ASCII that is the identity, NFKC is the close approximation otherwise.
    return password if password.isascii() else unicodedata.normalize("NFKC", password)


def scram_verifier(password, iterations=4096, salt=None):
    """The SCRAM-SHA-256 verifier PostgreSQL stores, so plaintext passwords never reach the server."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password).encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, b64(salt), b64(stored_key), b64(server_key))


def _role_sql(name, password, createdb=False, superuser=False):
    attrs = "LOGIN %s %s PASSWORD %s" % ("CREATEDB" if createdb else "NOCREATEDB",
                                          "SUPERUSER" if superuser else "NOSUPERUSER",
                                          _literal(scram_verifier(password)))
    return ("SELECT format(CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(lit)s) "
            "THEN 'ALTER ROLE %%I WITH %(attrs)s' ELSE 'CREATE ROLE %%I WITH %(attrs)s' END, %(lit)s)\\gexec\n"
            % {"lit": _literal(name), "attrs": attrs.replace("'", "''")})


def ensure_role(server, name, password, createdb=False, superuser=False):
    """Create or update a login role (password sent as a SCRAM verifier, never in plaintext)."""
    _admin_sql(server, "postgres", _role_sql(name, password, createdb, superuser), "ensure role %s" % name,
               extra_secrets=(password,))


def _dump_to(server, argv, out_path, what):
    """Run a dump tool (argv without its -f) as admin into ``out_path + '.part'``, then rename it: a failed dump
    leaves nothing. Returns the file's size in bytes."""
    part = out_path + ".part"
    try:
        _run(argv[:1] + ["-f", part] + argv[1:], _client_env(server.host, server.port, server.admin_user,
                                                            server.admin_password),
             what, server.admin_password, timeout=None)
        os.replace(part, out_path)
    finally:
        if os.path.exists(part):
            os.unlink(part)
    return os.path.getsize(out_path)


def dump_database(server, dbname, out_path):
    """pg_dump -Fc -Z 1 of ``dbname`` as admin into out_path; returns its size in bytes.

    -Z 1 dumps about 3x faster than the default level for about the same size."""
    _check_dbname(dbname)
    return _dump_to(server, [_client_bin("pg_dump"), "-w", "-Fc", "-Z", "1", "-d", _dbarg(dbname)], out_path,
                    "pg_dump %s" % dbname)


def dump_globals(server, out_path, what):
    """pg_dumpall of the server-wide part ``what`` (``roles``: --roles-only, ``tablespaces``: --tablespaces-only,
    ``schema``: --schema-only) as plain SQL into out_path; returns its size in bytes."""
    flag = {"roles": "--roles-only", "tablespaces": "--tablespaces-only", "schema": "--schema-only"}[what]
    return _dump_to(server, [_client_bin("pg_dumpall"), "-w", flag], out_path, "pg_dumpall %s" % flag)


def restore_database(host, port, user, password, dbname, dump_path, sslmode="prefer", jobs=1):
    """createdb + pg_restore --no-owner --no-acl as THAT user (exactly what the service does).

    Raises LoginFailed, DatabaseExists (the existing database is not touched), PermissionDenied (no
    CREATEDB), ConnectFailed, PgError.  When pg_restore fails after the database was created, the
    database is dropped again so nothing half-restored is left.  Two subprocesses in the good case.
    """
    _check_dbname(dbname)
    if not os.path.isfile(dump_path):
        raise PgError("restore %s: dump file %s not found" % (dbname, dump_path), kind="invalid")
    env = _client_env(host, port, user, password, sslmode)
    _run([_client_bin("createdb"), "-w", "-T", "template0", "--", dbname], env,
         "create database %s" % dbname, password)
    argv = [_client_bin("pg_restore"), "-w", "--no-owner", "--no-acl", "--exit-on-error",
            "-d", _dbarg(dbname)]
    if jobs and int(jobs) > 1:
        argv += ["-j", str(int(jobs))]
    argv.append(dump_path)
    try:
        _run(argv, env, "pg_restore into %s" % dbname, password, timeout=None)
    except BaseException as exc:
        drop_error = None
        try:
            _psql(host, port, user, password, "postgres",
                  "DROP DATABASE IF EXISTS %s WITH (FORCE)" % _ident(dbname), "drop %s" % dbname, sslmode=sslmode)
        except Exception as e:  # keep the original error; say that the cleanup failed too
            drop_error = e
        if isinstance(exc, DatabaseExists):
            # "relation ... already exists" inside the dump is not a database name clash
            exc = PgError(str(exc))
        elif not isinstance(exc, (PgError, LoginFailed)):
            raise
        if drop_error is not None:
            exc.args = ("%s (and dropping the half-restored database failed: %s)" % (exc.args[0], drop_error),)
        raise exc from None


def user_can_create_db(host, port, user, password):
    out = _psql(host, port, user, password, "postgres",
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user",
                "check CREATEDB of %s" % user)
    return out.strip() == "t"


def table_counts(host, port, user, password, dbname):
    """Exact row counts of every user table in one query; keys are 'schema.table'."""
    sql = (
        "SELECT n.nspname || '.' || c.relname, "
        "(xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), "
        "false, true, '')))[1]::text "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' "
        "ORDER BY 1")
    out = _psql(host, port, user, password, dbname, sql, "count rows in %s" % dbname)
    counts = {}
    for line in out.split("\n"):
        if line:
            name, _, count = line.rpartition("|")
            counts[name] = int(count)
    return counts


_SAMPLE_SQL = """
CREATE TABLE departments (
    dept_id    integer PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    location   text NOT NULL
);
INSERT INTO departments VALUES
    (1, 'Engineering', 'Seattle'), (2, 'Sales', 'London'), (3, 'Finance', 'Pune'),
    (4, 'Support', 'Dublin'), (5, 'Marketing', 'Sydney'), (6, 'Research', 'Redmond');
CREATE SEQUENCE employee_badge_seq START 100000;
CREATE TABLE employees (
    emp_id     bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    badge      bigint NOT NULL DEFAULT nextval('employee_badge_seq'),
    first_name text NOT NULL,
    last_name  text NOT NULL,
    email      text NOT NULL,
    dept_id    integer NOT NULL REFERENCES departments (dept_id),
    salary     numeric(10, 2) NOT NULL CHECK (salary > 0),
    hired_on   date NOT NULL,
    notes      text
);
ALTER SEQUENCE employee_badge_seq OWNED BY employees.badge;
INSERT INTO employees (first_name, last_name, email, dept_id, salary, hired_on, notes)
SELECT (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Frances','Ken'])[1 + g %% 8],
       (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Allen','Thompson'])[1 + (g / 8) %% 8],
       'employee' || g || '@example.com',
       1 + g %% 6,
       30000 + (g::bigint * 7919) %% 90000,     -- bigint: g * 7919 overflows int4 above g = 271,180
       date '2000-01-01' + (g %% 8000),
       md5(g::text)
FROM generate_series(1, %(rows)d) AS g;
CREATE INDEX employees_dept_idx ON employees (dept_id);
CREATE INDEX employees_last_name_idx ON employees (last_name, first_name);
CREATE VIEW department_payroll AS
    SELECT d.name AS department, count(e.emp_id) AS headcount, coalesce(sum(e.salary), 0) AS payroll
    FROM departments d LEFT JOIN employees e USING (dept_id)
    GROUP BY d.name;
COMMENT ON TABLE employees IS 'dpemulator sample data';
ANALYZE;
"""


def create_sample_database(server, dbname, rows):
    """Create ``dbname`` with departments + employees (FK, indexes, a sequence, an identity, a view);
    ``rows`` employees.  About 150 bytes per row on disk including indexes."""
    create_database(server, dbname)
    _admin_sql(server, dbname, _SAMPLE_SQL % {"rows": int(rows)}, "fill sample database %s" % dbname)


# --------------------------------------------------------------------------------------------------
# ADO.NET connection strings

_ADO_KEYS = {
    "server": "host", "host": "host", "datasource": "host", "address": "host", "addr": "host",
    "networkaddress": "host",
    "port": "port",
    "database": "database", "initialcatalog": "database", "db": "database",
    "userid": "user", "username": "user", "uid": "user", "user": "user",
    "password": "password", "pwd": "password", "psw": "password",
    "sslmode": "ssl_mode",
}
_SSL_MODES = {
    "disable": "disable", "allow": "allow", "prefer": "prefer", "require": "require",
    "verifyca": "verify-ca", "verifyfull": "verify-full",
}
_SSL_MODES_ADO = {"disable": "Disable", "allow": "Allow", "prefer": "Prefer", "require": "Require",
                  "verify-ca": "VerifyCA", "verify-full": "VerifyFull"}


def _ado_pairs(text):
    """Split 'k=v;k="v;";...' into (key, value) pairs (ADO.NET rules: quotes with doubled quote
    escapes, '==' in a key is a literal '=').  Raises ValueError without echoing values."""
    pairs = []
    i, n = 0, len(text)
    while i < n:
        while i < n and (text[i].isspace() or text[i] == ";"):
            i += 1
        if i >= n:
            break
        key = []
        while True:
            if i >= n:
                raise ValueError("not an ADO.NET connection string: a part has no '='")
            ch = text[i]
            if ch == "=":
                if i + 1 < n and text[i + 1] == "=":
                    key.append("=")
                    i += 2
                    continue
                i += 1
                break
            if ch == ";":
                raise ValueError("not an ADO.NET connection string: a part has no '='")
            key.append(ch)
            i += 1
        key = "".join(key).strip()
        if not key:
            raise ValueError("not an ADO.NET connection string: empty key")
        while i < n and text[i].isspace() and text[i] not in ";":
            i += 1
        if i < n and text[i] in "\"'":
            quote = text[i]
            i += 1
            val = []
            while True:
                if i >= n:
                    raise ValueError("not an ADO.NET connection string: unterminated quote in %r" % key)
                if text[i] == quote:
                    if i + 1 < n and text[i + 1] == quote:
                        val.append(quote)
                        i += 2
                        continue
                    i += 1
                    break
                val.append(text[i])
                i += 1
            while i < n and text[i].isspace():
                i += 1
            if i < n and text[i] != ";":
                raise ValueError("not an ADO.NET connection string: text after the quoted value of %r" % key)
            value = "".join(val)
        else:
            j = text.find(";", i)
            j = n if j < 0 else j
            value = text[i:j].strip()
            i = j
        pairs.append((key, value))
    return pairs


def parse_ado_connection_string(text):
    """Parse an ADO.NET (Npgsql style) connection string.

    Returns {host, port (int, default 5432), database (None if absent), user, password, ssl_mode}.
    ``ssl_mode`` is the libpq spelling (disable/allow/prefer/require/verify-ca/verify-full; 'prefer'
    when absent).  Keys are case-insensitive, spaces inside keys are ignored, and these synonyms are
    accepted: Server/Host/Data Source/Address, Port, Database/Initial Catalog/DB, User Id/UserID/
    Username/User Name/UID/User, Password/PWD/PSW, Ssl Mode/SslMode.  Other keys are ignored.
    An Azure single-server user 'name@server' gives user 'name'; the host is returned as given
    ('tcp:' prefix and a ',port' suffix are understood).  ValueError (never containing the
    password or the input text) when it is not such a string or Server/User Id/Password is missing.
    """
    if not isinstance(text, str):
        raise ValueError("connection string must be text")
    stripped = text.strip()
    if not stripped:
        raise ValueError("connection string is empty")
    if re.match(r"^[a-z][a-z0-9+.-]*://", stripped, re.I) or stripped[0] in "{[<":
        raise ValueError("unsupported connection string format: expected ADO.NET 'Server=...;User Id=...;Password=...'")
    pairs = _ado_pairs(stripped)
    result = {"host": None, "port": 5432, "database": None, "user": None, "password": None, "ssl_mode": "prefer"}
    port_text = None
    for key, value in pairs:
        norm = re.sub(r"\s+", "", key).lower()
        field = _ADO_KEYS.get(norm)
        if field is None:
            continue
        if field == "port":
            port_text = value
        elif field == "ssl_mode":
            mode = _SSL_MODES.get(re.sub(r"[\s_-]+", "", value).lower())
            if mode is None:
                raise ValueError("unsupported Ssl Mode value %r" % value[:20])
            result["ssl_mode"] = mode
        else:
            result[field] = value
    missing = [label for field, label in (("host", "Server"), ("user", "User Id"), ("password", "Password"))
               if not result[field]]
    if missing:
        raise ValueError("connection string is missing %s" % ", ".join(missing))
    host = result["host"]
    if host.lower().startswith("tcp:"):
        host = host[4:]
    m = re.match(r"^(.*),\s*(\d+)$", host)
    if m:
        host = m.group(1)
        port_text = port_text or m.group(2)
    result["host"] = host.strip()
    if not result["host"]:
        raise ValueError("connection string is missing Server")
    if port_text is not None and port_text != "":
        if not re.fullmatch(r"\d{1,5}", port_text) or not 0 < int(port_text) < 65536:
            raise ValueError("invalid Port value %r" % port_text[:10])
        result["port"] = int(port_text)
    user = result["user"]
    if "@" in user:
        user = user.rsplit("@", 1)[0]
        if not user:
            raise ValueError("connection string is missing User Id")
    result["user"] = user
    if result["database"] == "":
        result["database"] = None
    return result


def _ado_value(value):
    value = str(value)
    if value == "" or any(c in value for c in ";='\"") or value != value.strip():
        return '"' + value.replace('"', '""') + '"'
    return value


def build_ado_connection_string(host, port, database, user, password, ssl_mode="Require"):
    """'Server=h;Database=d;Port=p;User Id=u;Password=pw;Ssl Mode=Require;' (values quoted when needed).
    ``ssl_mode`` may be given in ADO.NET (VerifyFull) or libpq (verify-full) spelling."""
    mode = _SSL_MODES.get(re.sub(r"[\s_-]+", "", str(ssl_mode)).lower())
    if mode is None:
        raise ValueError("unsupported ssl_mode %r" % ssl_mode)
    parts = [("Server", host)]
    if database:
        parts.append(("Database", database))
    parts += [("Port", int(port)), ("User Id", user), ("Password", password), ("Ssl Mode", _SSL_MODES_ADO[mode])]
    return "".join("%s=%s;" % (k, _ado_value(v)) for k, v in parts)


# --------------------------------------------------------------------------------------------------
# managed clusters

def _port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return False
        raise
    finally:
        s.close()


def pid_alive(pid):
    """True while process `pid` exists and is not a zombie (a stopped server's pid may linger as one)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


class ClusterManager:
    """initdb/pg_ctl clusters under ``base_dir/<name>`` (see the module docstring)."""

    def __init__(self, base_dir, bin_dir=None, tls_cert=None, tls_key=None):
        self.base_dir = os.path.abspath(base_dir)
        self.bin_dir = bin_dir or find_pg_bin_dir()
        for tool in ("initdb", "pg_ctl"):
            if not os.access(os.path.join(self.bin_dir, tool), os.X_OK):
                raise PostgresUnavailable("%s not found in %s; %s" % (tool, self.bin_dir, _INSTALL_HINT))
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("tls_cert and tls_key go together")
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self._lock = threading.RLock()  # ensure/stop of one manager are serialised
        self.as_root = os.geteuid() == 0
        if self.as_root:
            import pwd
            try:
                pw = pwd.getpwnam(PG_OS_USER)
            except KeyError:
                raise PostgresUnavailable("running as root needs the OS user %r (created by the Debian "
                                          "postgresql package)" % PG_OS_USER)
            self.uid, self.gid, self.os_user = pw.pw_uid, pw.pw_gid, PG_OS_USER
        else:
            import pwd
            self.uid, self.gid = os.geteuid(), os.getegid()
            self.os_user = pwd.getpwuid(self.uid).pw_name

    # paths ---------------------------------------------------------------------------------------
    def cluster_dir(self, name):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name or "") or name in (".", ".."):
            raise ValueError("invalid cluster name %r" % (name,))
        return os.path.join(self.base_dir, name)

    def _data(self, name):
        return os.path.join(self.cluster_dir(name), "data")

    def log_path(self, name):
        return os.path.join(self.cluster_dir(name), "server.log")

    def _meta_path(self, name):
        return os.path.join(self.cluster_dir(name), "cluster.json")

    # process plumbing ----------------------------------------------------------------------------
    def _server_env(self):
        return {"PATH": self.bin_dir + ":/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                "HOME": self.base_dir, "TZ": os.environ.get("TZ", "UTC")}

    def _as_owner(self, argv):
        return (["runuser", "-u", PG_OS_USER, "--"] + argv) if self.as_root else argv

    def _server_cmd(self, argv, what, cwd, timeout=START_TIMEOUT + 30, check=True, input_text=None, env=None):
        try:
            proc = subprocess.run(self._as_owner(argv), cwd=cwd, env=env or self._server_env(),
                                  input=input_text, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  stdin=None if input_text is not None else subprocess.DEVNULL,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PgError("%s: timed out" % what)
        if check and proc.returncode != 0:
            raise PgError("%s failed (rc %d): %s" % (what, proc.returncode, _scrub(proc.stdout).strip()[-2000:]))
        return proc

    def _own(self, path, mode):
        os.chmod(path, mode)
        if self.as_root:
            os.chown(path, self.uid, self.gid)

    def _write(self, path, content, mode=0o600):
        """Write only when different; return True if changed."""
        try:
            with open(path) as fh:
                if fh.read() == content:
                    return False
        except OSError:
            pass
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(content)
        self._own(tmp, mode)
        os.replace(tmp, path)
        return True

    def _check_traversable(self, path):
        if not self.as_root:
            return
        cur = os.path.dirname(path)
        while True:
            st = os.stat(cur)
            if st.st_uid != self.uid and not st.st_mode & 0o001:
                raise PgError("%s is not traversable by the OS user %r (cluster dir %s); chmod o+x it or "
                              "choose a base_dir elsewhere" % (cur, PG_OS_USER, path), kind="invalid")
            parent = os.path.dirname(cur)
            if parent == cur:
                break
            cur = parent

    def _pid(self, name):
        try:
            with open(os.path.join(self._data(name), "postmaster.pid")) as fh:
                return int(fh.readline().strip())
        except (OSError, ValueError):
            return None

    def is_running(self, name):
        pid = self._pid(name)
        return bool(pid) and pid_alive(pid)

    def _socket_dir(self, name, port):
        d = self.cluster_dir(name)
        return d if len(os.path.join(d, ".s.PGSQL.%d" % port)) < 100 else None

    # configuration -------------------------------------------------------------------------------
    def _conf(self, name, port, ssl):
        sock = self._socket_dir(name, port)
        lines = [
            "# written by dpemulator; changes are overwritten by ClusterManager.ensure",
            "listen_addresses = '127.0.0.1'",
            "port = %d" % port,
            "unix_socket_directories = %s" % _literal(sock or ""),
            "unix_socket_permissions = 0700",
            "password_encryption = 'scram-sha-256'",
            "fsync = off",
            "synchronous_commit = off",
            "full_page_writes = off",
            "max_wal_size = '1GB'",
            "maintenance_work_mem = '128MB'",
            "max_connections = 50",
            "logging_collector = off",
            "log_line_prefix = '%m [%p] %q%u@%d '",
            "log_statement = 'none'",
            "ssl = %s" % ("on" if ssl else "off"),
        ]
        if ssl:
            lines += ["ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"]
        return "\n".join(lines) + "\n"

    def _hba(self):
        return ("# written by dpemulator\n"
                "local all all peer map=dpemulator\n"
                "host  all all 127.0.0.1/32 scram-sha-256\n")

    def _ident_map(self, bootstrap_user):
        return "# written by dpemulator\ndpemulator %s %s\n" % (self.os_user, _ident(bootstrap_user))

    def _configure(self, name, port, bootstrap_user):
        data = self._data(name)
        changed = False
        ssl = bool(self.tls_cert)
        if ssl:
            with open(self.tls_cert) as fh:
                changed |= self._write(os.path.join(data, "server.crt"), fh.read(), 0o644)
            with open(self.tls_key) as fh:
                changed |= self._write(os.path.join(data, "server.key"), fh.read(), 0o600)
        changed |= self._write(os.path.join(data, "dpemulator.conf"), self._conf(name, port, ssl), 0o600)
        changed |= self._write(os.path.join(data, "pg_hba.conf"), self._hba(), 0o600)
        changed |= self._write(os.path.join(data, "pg_ident.conf"), self._ident_map(bootstrap_user), 0o600)
        return changed

    def _initdb(self, name, admin_user, admin_password):
        cdir = self.cluster_dir(name)
        if not os.path.isdir(self.base_dir):
            os.makedirs(self.base_dir, 0o755, exist_ok=True)
        os.makedirs(cdir, exist_ok=True)
        self._own(cdir, 0o700)
        self._check_traversable(cdir)
        data = self._data(name)
        if os.path.exists(data):
            if os.listdir(data):
                raise PgError("%s exists but is not a PostgreSQL data directory" % data)
            os.rmdir(data)
        pwfile = os.path.join(cdir, ".initdb-pw")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(admin_password + "\n")
        self._own(pwfile, 0o600)
        try:
            self._server_cmd([os.path.join(self.bin_dir, "initdb"), "-D", data, "-U", admin_user,
                              "--pwfile=" + pwfile, "-A", "scram-sha-256", "--auth-local=peer",
                              "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"],
                             "initdb %s" % name, cwd=cdir)
        finally:
            os.unlink(pwfile)
        with open(os.path.join(data, "postgresql.conf"), "a") as fh:
            fh.write("\ninclude_if_exists = 'dpemulator.conf'\n")
        meta = {"bootstrap_user": admin_user, "created": time.time()}
        self._write(self._meta_path(name), json.dumps(meta) + "\n", 0o600)

    def _meta(self, name):
        try:
            with open(self._meta_path(name)) as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return {}

    def _pg_ctl(self, name, *args, check=True, timeout=START_TIMEOUT + 30):
        return self._server_cmd([os.path.join(self.bin_dir, "pg_ctl"), "-D", self._data(name)] + list(args),
                                "pg_ctl %s %s" % (args[0] if args else "", name), cwd=self.cluster_dir(name),
                                check=check, timeout=timeout)

    def _start(self, name, port):
        if not _port_free(port):
            raise PgError("cannot start cluster %s: 127.0.0.1:%d is already in use" % (name, port), kind="invalid")
        log = self.log_path(name)
        if not os.path.exists(log):
            open(log, "a").close()
            self._own(log, 0o600)
        proc = self._pg_ctl(name, "-l", log, "-w", "-t", str(START_TIMEOUT), "start", check=False)
        if proc.returncode != 0:
            tail = ""
            try:
                with open(log) as fh:
                    tail = "".join(fh.readlines()[-15:])
            except OSError:
                pass
            raise PgError("cannot start cluster %s: %s\n%s" % (name, proc.stdout.strip()[-500:], tail.strip()))

    def _repair_admin(self, name, port, admin_user, admin_password):
        """Create/alter the admin role through the peer-authenticated Unix socket."""
        sock = self._socket_dir(name, port)
        boot = self._meta(name).get("bootstrap_user")
        if not sock or not boot:
            raise LoginFailed("cluster %s exists with another admin user or password and cannot be repaired" % name)
        env = self._server_env()
        env.update({"PGHOST": sock, "PGPORT": str(port), "PGUSER": boot, "PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT)})
        self._server_cmd([_client_bin("psql"), "-X", "-q", "-w", "-v", "ON_ERROR_STOP=1", "-d", "dbname=postgres",
                          "-f", "-"], "set admin role of %s" % name, cwd=self.cluster_dir(name),
                         input_text=_role_sql(admin_user, admin_password, createdb=True, superuser=True), env=env,
                         timeout=QUICK_TIMEOUT)

    # public --------------------------------------------------------------------------------------
    def ensure(self, name, port, admin_user, admin_password):
        """initdb if missing, (re)write config, start if not running (restart if config changed),
        make sure admin_user/admin_password log in.  Idempotent."""
        with self._lock:
            return self._ensure(name, int(port), admin_user, admin_password)

    def _ensure(self, name, port, admin_user, admin_password):
        if not admin_user or not admin_password:
            raise ValueError("admin_user and admin_password are required")
        data = self._data(name)
        if not os.path.exists(os.path.join(data, "PG_VERSION")):
            if self.is_running(name):
                raise PgError("cluster %s has no PG_VERSION but a live postmaster" % name)
            self._initdb(name, admin_user, admin_password)
        boot = self._meta(name).get("bootstrap_user") or admin_user
        changed = self._configure(name, port, boot)
        running = self.is_running(name)
        if running and changed:
            self._pg_ctl(name, "-w", "-t", str(START_TIMEOUT), "-m", "fast", "stop")
            running = False
        if not running:
            self._start(name, port)
        try:
            check_login("127.0.0.1", port, admin_user, admin_password)
        except LoginFailed:
            self._repair_admin(name, port, admin_user, admin_password)
            check_login("127.0.0.1", port, admin_user, admin_password)
        with open(os.path.join(data, "PG_VERSION")) as fh:
            version = int(fh.read().strip().split(".")[0])
        return PgServer(host="127.0.0.1", port=port, admin_user=admin_user, admin_password=admin_password,
                        version=version, data_dir=data, ssl=bool(self.tls_cert))

    def stop(self, name):
        """Fast shutdown (pg_ctl stop -m fast); immediate shutdown, then SIGKILL, if that does not work."""
        with self._lock:
            self._stop(name)

    def _stop(self, name):
        if not self.is_running(name):
            return
        proc = self._pg_ctl(name, "-w", "-t", "30", "-m", "fast", "stop", check=False)
        if proc.returncode == 0 or not self.is_running(name):
            return
        pid = self._pid(name)
        self._pg_ctl(name, "-w", "-t", "10", "-m", "immediate", "stop", check=False)
        if pid and pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def names(self):
        """Names of the clusters (initialised data dirs) under base_dir."""
        try:
            entries = sorted(os.listdir(self.base_dir))
        except OSError:
            return []
        return [e for e in entries if os.path.exists(os.path.join(self.base_dir, e, "data", "PG_VERSION"))]

    def stop_all(self):
        errors = []
        for name in self.names():
            try:
                self.stop(name)
            except Exception as exc:  # stop the others anyway
                errors.append("%s: %s" % (name, exc))
        if errors:
            raise PgError("stop_all: " + "; ".join(errors))

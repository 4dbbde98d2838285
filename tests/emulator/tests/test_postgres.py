"""Tests for dpemulator.postgres against real PostgreSQL clusters (no mocks).

Clusters live in one temp dir per session (mode 0755 so the ``postgres`` OS user can traverse it when
we are root) on free 127.0.0.1 ports, and are stopped by the fixtures' finalizers even when a test
fails.  The tests are skipped only when the PostgreSQL binaries are missing.

The 100 MB restore benchmark runs only with DPEMULATOR_PG_BENCH=1 (it takes about a minute).
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dpemulator import postgres as pg  # noqa: E402


def _pg_missing():
    try:
        pg.find_pg_bin_dir()
        for tool in ("psql", "pg_dump", "pg_restore", "createdb"):
            pg._client_bin(tool)
    except pg.PostgresUnavailable as exc:
        return str(exc)
    return None


_MISSING = _pg_missing()
needs_pg = pytest.mark.skipif(_MISSING is not None,
                              reason="PostgreSQL binaries missing (run scripts/ensure-postgres.sh): %s" % _MISSING)

ADMIN, ADMIN_PW = "azureuser", "Adm1n'pw;with \"odd\" chars"
RESTORER, RESTORER_PW = "restorer", "R3store=pw;x"
PLAIN, PLAIN_PW = "plainuser", "Pl4in-pw"
HOST = "127.0.0.1"


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="session")
def pg_base():
    base = tempfile.mkdtemp(prefix="dpemu-pg-")
    os.chmod(base, 0o755)
    managers = []
    yield base, managers
    try:
        for mgr in managers:
            mgr.stop_all()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _manager(pg_base, sub, **kw):
    base, managers = pg_base
    mgr = pg.ClusterManager(os.path.join(base, sub), **kw)
    managers.append(mgr)
    return mgr


@pytest.fixture(scope="session")
def cluster(pg_base):
    """One shared plain cluster with an admin, a CREATEDB user and a plain user."""
    mgr = _manager(pg_base, "shared")
    server = mgr.ensure("shared", free_port(), ADMIN, ADMIN_PW)
    pg.ensure_role(server, RESTORER, RESTORER_PW, createdb=True)
    pg.ensure_role(server, PLAIN, PLAIN_PW)
    yield server
    mgr.stop_all()


@pytest.fixture(scope="session")
def sample_dump(cluster, pg_base):
    pg.create_sample_database(cluster, "empdb11", 2000)
    path = os.path.join(pg_base[0], "empdb11.dump")
    size = pg.dump_database(cluster, "empdb11", path)
    assert size == os.path.getsize(path) > 1000
    return path


@pytest.fixture(scope="session")
def tls_files(pg_base):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    d = os.path.join(pg_base[0], "tls")
    os.makedirs(d)
    paths = {"ca": os.path.join(d, "ca.pem"), "cert": os.path.join(d, "server.pem"),
             "key": os.path.join(d, "server.key")}
    ca.cert_pem.write_to_path(paths["ca"])
    with open(paths["cert"], "wb") as fh:
        for blob in cert.cert_chain_pems:
            fh.write(blob.bytes())
    cert.private_key_pem.write_to_path(paths["key"])
    return paths


def _psql(server, sql, dbname="postgres", **env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(server.env())
    env.update(env_extra)
    return subprocess.run([pg._client_bin("psql"), "-X", "-At", "-w", "-d", dbname, "-c", sql], env=env,
                          capture_output=True, text=True, timeout=60)


def _listen_addresses(port):
    """Local addresses of LISTEN sockets on ``port`` from /proc/net/tcp{,6}."""
    found = []
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as fh:
                next(fh)
                for line in fh:
                    cols = line.split()
                    addr, lport = cols[1].rsplit(":", 1)
                    if int(lport, 16) == port and cols[3] == "0A":
                        found.append(addr)
        except OSError:
            pass
    return found


# --------------------------------------------------------------------------------------------------
# clusters

@needs_pg
def test_find_pg_bin_dir():
    d = pg.find_pg_bin_dir()
    assert os.access(os.path.join(d, "initdb"), os.X_OK)
    assert os.access(os.path.join(d, "pg_ctl"), os.X_OK)


def test_find_pg_bin_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("DPEMULATOR_PG_BIN", str(tmp_path))
    with pytest.raises(pg.PostgresUnavailable) as ei:
        pg.find_pg_bin_dir()
    assert "apt-get install postgresql" in str(ei.value)


@needs_pg
def test_ensure_stop_restart_idempotent(pg_base):
    mgr = _manager(pg_base, "idem")
    port = free_port()
    s1 = mgr.ensure("c1", port, ADMIN, ADMIN_PW)
    assert mgr.is_running("c1")
    assert (s1.host, s1.port, s1.admin_user) == (HOST, port, ADMIN) and s1.version >= 10
    assert s1.data_dir and os.path.isdir(s1.data_dir)
    assert pg.server_version(s1) == s1.version
    pid = mgr._pid("c1")

    t = time.monotonic()
    s2 = mgr.ensure("c1", port, ADMIN, ADMIN_PW)
    assert time.monotonic() - t < 1.0, "ensure on a running cluster must be fast"
    assert mgr._pid("c1") == pid, "ensure must not restart an unchanged running cluster"
    assert s2 == s1

    pg.create_database(s1, "keepme")
    mgr.stop("c1")
    assert not mgr.is_running("c1")
    mgr.stop("c1")  # idempotent
    with pytest.raises(pg.ConnectFailed):
        pg.check_login(HOST, port, ADMIN, ADMIN_PW)

    s3 = mgr.ensure("c1", port, ADMIN, ADMIN_PW)
    assert mgr.is_running("c1") and mgr._pid("c1") != pid
    assert pg.database_exists(s3, "keepme"), "data must survive a restart"

    # a new port means a restart on that port
    port2 = free_port()
    s4 = mgr.ensure("c1", port2, ADMIN, ADMIN_PW)
    assert s4.port == port2 and pg.database_exists(s4, "keepme")
    with pytest.raises(pg.ConnectFailed):
        pg.check_login(HOST, port, ADMIN, ADMIN_PW)

    # a new admin user/password is repaired through the peer socket; the old one still exists
    s5 = mgr.ensure("c1", port2, "admin2", "N3w-admin-pw")
    assert pg.database_exists(s5, "keepme")
    assert pg.user_can_create_db(HOST, port2, "admin2", "N3w-admin-pw")

    assert mgr.names() == ["c1"]
    mgr.stop_all()
    assert not mgr.is_running("c1")


@needs_pg
def test_listens_only_on_loopback(cluster):
    assert pg.run_sql(cluster, "postgres", "SHOW listen_addresses") == "127.0.0.1"
    addrs = _listen_addresses(cluster.port)
    assert addrs, "nothing listens on the cluster port"
    assert set(addrs) == {"0100007F"}, addrs  # 127.0.0.1 in /proc/net/tcp byte order, no IPv6
    others = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            if not info[4][0].startswith("127."):
                others.add(info[4][0])
    except OSError:
        pass
    for addr in others:
        with pytest.raises(OSError):
            socket.create_connection((addr, cluster.port), timeout=2).close()


@needs_pg
def test_port_in_use_is_refused(pg_base):
    mgr = _manager(pg_base, "busy")
    s = socket.socket()
    s.bind((HOST, 0))
    s.listen(1)
    try:
        with pytest.raises(pg.PgError, match="already in use"):
            mgr.ensure("c1", s.getsockname()[1], ADMIN, ADMIN_PW)
        assert not mgr.is_running("c1")
    finally:
        s.close()


@needs_pg
def test_password_auth_enforced(cluster):
    pg.check_login(HOST, cluster.port, ADMIN, ADMIN_PW)
    pg.check_login(HOST, cluster.port, RESTORER, RESTORER_PW)
    for user, password in ((ADMIN, "wrong-password"), (RESTORER, ADMIN_PW), ("nosuchuser", "whatever1"),
                           (ADMIN, ""), (ADMIN, None)):
        with pytest.raises(pg.LoginFailed) as ei:
            pg.check_login(HOST, cluster.port, user, password)
        assert "password" in ei.value.reason
        if password:
            assert password not in str(ei.value) and password not in ei.value.reason
    # psql with no password at all is refused too (no trust anywhere on TCP)
    env = dict(cluster.env(), PGPASSWORD="")
    res = _psql(cluster, "SELECT 1", **env)
    assert res.returncode != 0 and "password" in res.stderr


@needs_pg
def test_env_and_attach(cluster):
    env = cluster.env()
    assert env == {"PGHOST": HOST, "PGPORT": str(cluster.port), "PGUSER": ADMIN, "PGPASSWORD": ADMIN_PW,
                   "PGSSLMODE": "prefer"}
    assert cluster.env(RESTORER, RESTORER_PW)["PGUSER"] == RESTORER
    assert ADMIN_PW not in repr(cluster)
    res = _psql(cluster, "SELECT current_user")
    assert res.returncode == 0 and res.stdout.strip() == ADMIN
    att = pg.attach(HOST, cluster.port, ADMIN, ADMIN_PW)
    assert att.data_dir is None and att.version == cluster.version and att.port == cluster.port
    with pytest.raises(pg.LoginFailed):
        pg.attach(HOST, cluster.port, ADMIN, "nope-nope")


@needs_pg
def test_tls(pg_base, tls_files, cluster):
    mgr = _manager(pg_base, "tls", tls_cert=tls_files["cert"], tls_key=tls_files["key"])
    server = mgr.ensure("t1", free_port(), ADMIN, ADMIN_PW)
    assert server.ssl
    for mode in ("verify-ca", "verify-full"):
        res = _psql(server, "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    PGSSLMODE=mode, PGSSLROOTCERT=tls_files["ca"])
        assert res.returncode == 0, res.stderr
        assert res.stdout.startswith("t|TLS"), res.stdout
    # a CA that did not sign the server certificate is refused
    other = os.path.join(pg_base[0], "tls", "other-ca.pem")
    import trustme
    trustme.CA().cert_pem.write_to_path(other)
    res = _psql(server, "SELECT 1", PGSSLMODE="verify-ca", PGSSLROOTCERT=other)
    assert res.returncode != 0 and "certificate" in res.stderr
    # the library's own calls work over TLS
    pg.check_login(HOST, server.port, ADMIN, ADMIN_PW, sslmode="require")
    # the plain cluster has no TLS: sslmode=require fails, and not as a login failure
    with pytest.raises(pg.ConnectFailed) as ei:
        pg.check_login(HOST, cluster.port, ADMIN, ADMIN_PW, sslmode="require")
    assert ei.value.kind == "ssl"
    mgr.stop("t1")
    assert not mgr.is_running("t1")


@needs_pg
def test_tls_restore(pg_base, tls_files, sample_dump):
    mgr = _manager(pg_base, "tls2", tls_cert=tls_files["cert"], tls_key=tls_files["key"])
    server = mgr.ensure("t2", free_port(), ADMIN, ADMIN_PW)
    pg.ensure_role(server, RESTORER, RESTORER_PW, createdb=True)
    pg.restore_database(HOST, server.port, RESTORER, RESTORER_PW, "emprestored21", sample_dump,
                        sslmode="require")
    assert pg.table_counts(HOST, server.port, RESTORER, RESTORER_PW, "emprestored21")["public.employees"] == 2000
    mgr.stop_all()


# --------------------------------------------------------------------------------------------------
# databases, dump and restore

_FINGERPRINT = ("SELECT (SELECT md5(string_agg(e::text, ',' ORDER BY emp_id)) FROM employees e) || '|' || "
                "(SELECT md5(string_agg(d::text, ',' ORDER BY dept_id)) FROM departments d) || '|' || "
                "(SELECT string_agg(department || ':' || headcount, ',' ORDER BY department) FROM department_payroll)")


@needs_pg
def test_dump_restore_same_rows(cluster, sample_dump):
    src = pg.table_counts(HOST, cluster.port, ADMIN, ADMIN_PW, "empdb11")
    assert src == {"public.departments": 6, "public.employees": 2000}
    pg.restore_database(HOST, cluster.port, RESTORER, RESTORER_PW, "emprestored21", sample_dump)
    try:
        assert pg.database_exists(cluster, "emprestored21")
        assert "emprestored21" in pg.list_databases(cluster)
        assert pg.table_counts(HOST, cluster.port, RESTORER, RESTORER_PW, "emprestored21") == src
        assert (pg.run_sql(cluster, "emprestored21", _FINGERPRINT, RESTORER, RESTORER_PW)
                == pg.run_sql(cluster, "empdb11", _FINGERPRINT))
        # the restoring user owns what it restored (--no-owner), sequences and FKs came along
        owner_sql = "SELECT tableowner FROM pg_tables WHERE tablename = 'employees'"
        assert pg.run_sql(cluster, "emprestored21", owner_sql) == RESTORER
        seq = "SELECT last_value FROM employee_badge_seq"
        assert pg.run_sql(cluster, "emprestored21", seq) == pg.run_sql(cluster, "empdb11", seq)
        with pytest.raises(pg.PgError, match="foreign key"):
            pg.run_sql(cluster, "emprestored21", "INSERT INTO employees (first_name, last_name, email, dept_id, "
                       "salary, hired_on) VALUES ('a', 'b', 'c', 99, 1, now())", RESTORER, RESTORER_PW)
    finally:
        pg.drop_database(cluster, "emprestored21")
    assert not pg.database_exists(cluster, "emprestored21")


@needs_pg
def test_restore_with_jobs(cluster, sample_dump):
    pg.restore_database(HOST, cluster.port, RESTORER, RESTORER_PW, "restored_jobs", sample_dump, jobs=2)
    try:
        assert pg.table_counts(HOST, cluster.port, ADMIN, ADMIN_PW, "restored_jobs")["public.employees"] == 2000
    finally:
        pg.drop_database(cluster, "restored_jobs")


@needs_pg
def test_restore_into_existing_refused_and_untouched(cluster, sample_dump):
    pg.create_database(cluster, "existingdb")
    try:
        pg.run_sql(cluster, "existingdb", "CREATE TABLE marker (v text); INSERT INTO marker VALUES ('original')")
        with pytest.raises(pg.DatabaseExists) as ei:
            pg.restore_database(HOST, cluster.port, RESTORER, RESTORER_PW, "existingdb", sample_dump)
        assert ei.value.kind == "exists" and "already exists" in str(ei.value)
        assert RESTORER_PW not in str(ei.value)
        assert pg.database_exists(cluster, "existingdb")
        assert pg.table_counts(HOST, cluster.port, ADMIN, ADMIN_PW, "existingdb") == {"public.marker": 1}
        assert pg.run_sql(cluster, "existingdb", "SELECT v FROM marker") == "original"
    finally:
        pg.drop_database(cluster, "existingdb")


@needs_pg
def test_failed_restore_leaves_no_database(cluster, sample_dump, pg_base):
    # 1. a truncated archive
    broken = os.path.join(pg_base[0], "truncated.dump")
    with open(sample_dump, "rb") as src, open(broken, "wb") as dst:
        dst.write(src.read()[: os.path.getsize(sample_dump) // 2])
    with pytest.raises(pg.PgError):
        pg.restore_database(HOST, cluster.port, RESTORER, RESTORER_PW, "halfdb", broken)
    assert not pg.database_exists(cluster, "halfdb")

    # 2. a dump that fails half way for a non-superuser (an event trigger needs superuser)
    pg.create_sample_database(cluster, "needs_super", 50)
    pg.run_sql(cluster, "needs_super", "CREATE FUNCTION noop() RETURNS event_trigger LANGUAGE plpgsql "
               "AS $$BEGIN END$$; CREATE EVENT TRIGGER noop_trg ON ddl_command_start EXECUTE FUNCTION noop()")
    dump = os.path.join(pg_base[0], "needs_super.dump")
    pg.dump_database(cluster, "needs_super", dump)
    pg.drop_database(cluster, "needs_super")
    with pytest.raises(pg.PermissionDenied) as ei:
        pg.restore_database(HOST, cluster.port, RESTORER, RESTORER_PW, "halfdb2", dump)
    assert "event trigger" in str(ei.value) and RESTORER_PW not in str(ei.value)
    assert not pg.database_exists(cluster, "halfdb2")

    # 3. a missing dump file creates nothing
    with pytest.raises(pg.PgError):
        pg.restore_database(HOST, cluster.port, RESTORER, RESTORER_PW, "halfdb3", broken + ".nope")
    assert not pg.database_exists(cluster, "halfdb3")


@needs_pg
def test_restore_login_and_permission_errors(cluster, sample_dump):
    with pytest.raises(pg.LoginFailed) as ei:
        pg.restore_database(HOST, cluster.port, RESTORER, "wrong-Secret-9", "nodb1", sample_dump)
    assert "wrong-Secret-9" not in str(ei.value)
    with pytest.raises(pg.PermissionDenied):
        pg.restore_database(HOST, cluster.port, PLAIN, PLAIN_PW, "nodb2", sample_dump)
    with pytest.raises(pg.ConnectFailed):
        pg.restore_database(HOST, free_port(), RESTORER, RESTORER_PW, "nodb3", sample_dump)
    for name in ("nodb1", "nodb2", "nodb3"):
        assert not pg.database_exists(cluster, name)


@needs_pg
def test_odd_database_names_are_not_connection_strings(cluster, sample_dump):
    name = "host=evil dbname=x 'q\""
    pg.restore_database(HOST, cluster.port, RESTORER, RESTORER_PW, name, sample_dump)
    try:
        assert pg.database_exists(cluster, name)
        assert pg.table_counts(HOST, cluster.port, RESTORER, RESTORER_PW, name)["public.employees"] == 2000
    finally:
        pg.drop_database(cluster, name)
    with pytest.raises(pg.PgError):
        pg.create_database(cluster, "x" * 64)


@needs_pg
def test_user_can_create_db(cluster):
    assert pg.user_can_create_db(HOST, cluster.port, ADMIN, ADMIN_PW) is True      # superuser
    assert pg.user_can_create_db(HOST, cluster.port, RESTORER, RESTORER_PW) is True
    assert pg.user_can_create_db(HOST, cluster.port, PLAIN, PLAIN_PW) is False
    with pytest.raises(pg.LoginFailed):
        pg.user_can_create_db(HOST, cluster.port, PLAIN, "bad-password")


@needs_pg
def test_run_sql_errors_hide_passwords(cluster):
    with pytest.raises(pg.PgError) as ei:
        pg.run_sql(cluster, "postgres", "CREATE ROLE x WITH LOGIN PASSWORD 'TopSecret99' BOGUS")
    assert "TopSecret99" not in str(ei.value) and "bogus" in str(ei.value)
    with pytest.raises(pg.DatabaseNotFound):
        pg.run_sql(cluster, "no_such_db", "SELECT 1")
    assert pg.run_sql(cluster, "postgres", "SELECT 1; SELECT 'a|b'") == "1\na|b"


@needs_pg
def test_create_drop_list(cluster):
    assert not pg.database_exists(cluster, "tmpdb")
    pg.create_database(cluster, "tmpdb")
    assert pg.database_exists(cluster, "tmpdb") and "tmpdb" in pg.list_databases(cluster)
    with pytest.raises(pg.DatabaseExists):
        pg.create_database(cluster, "tmpdb")
    pg.drop_database(cluster, "tmpdb")
    pg.drop_database(cluster, "tmpdb")  # IF EXISTS
    assert "tmpdb" not in pg.list_databases(cluster)
    assert "template0" not in pg.list_databases(cluster)


@needs_pg
def test_sample_database_above_int4_range(cluster):
    """B4: 30000 + (g * 7919) % 90000 overflowed int4 above g = 271,180 ("integer out of range")."""
    rows = 300000
    assert rows * 7919 > 2 ** 31 - 1
    pg.create_sample_database(cluster, "bigsample", rows)
    try:
        out = pg.run_sql(cluster, "bigsample", "SELECT count(*), max(emp_id), min(salary) >= 30000, "
                         "max(salary) < 120000 FROM employees")
        assert out == "%d|%d|t|t" % (rows, rows)
        # The salary of the last row is the exact formula, not a wrapped value.
        got = pg.run_sql(cluster, "bigsample", "SELECT salary::bigint FROM employees WHERE emp_id = %d" % rows)
        assert int(got) == 30000 + (rows * 7919) % 90000
    finally:
        pg.drop_database(cluster, "bigsample")


# --------------------------------------------------------------------------------------------------
# ADO.NET connection strings (pure)

PW = "S3cr3t;Pa=ss\"word'"

GOOD = [
    ("Server=targetossserver.postgres.database.azure.com;Database=postgres;Port=5432;"
     "User Id=azureuser@targetossserver;Password=pw123;Ssl Mode=Require;",
     dict(host="targetossserver.postgres.database.azure.com", port=5432, database="postgres",
          user="azureuser", password="pw123", ssl_mode="require")),
    ("host=127.0.0.1;port=6543;username=bob;pwd=x1;sslmode=Prefer",
     dict(host="127.0.0.1", port=6543, database=None, user="bob", password="x1", ssl_mode="prefer")),
    ("Data Source=h;Initial Catalog=db1;UID=u;PWD=p;SSL Mode=VerifyFull",
     dict(host="h", port=5432, database="db1", user="u", password="p", ssl_mode="verify-full")),
    ("  SERVER = h ; USER ID = u ; PASSWORD = p ; ssl mode = disable ;; ",
     dict(host="h", port=5432, database=None, user="u", password="p", ssl_mode="disable")),
    ("Server=h;User ID=u;Password=\"a;b=c\"\"d\";Ssl Mode=verify-ca",
     dict(host="h", port=5432, database=None, user="u", password='a;b=c"d', ssl_mode="verify-ca")),
    ("Server=h;Username=u;Password='it''s';Port=;Timeout=15;Trust Server Certificate=true",
     dict(host="h", port=5432, database=None, user="u", password="it's", ssl_mode="prefer")),
    ("Server=tcp:h.example,5433;Uid=a@b.com@srv;Pwd=p",
     dict(host="h.example", port=5433, database=None, user="a@b.com", password="p", ssl_mode="prefer")),
    ("Server=h;UserName=u;Password=p=q", dict(host="h", port=5432, database=None, user="u", password="p=q",
                                             ssl_mode="prefer")),
]


@pytest.mark.parametrize("text,expected", GOOD)
def test_parse_ado_good(text, expected):
    assert pg.parse_ado_connection_string(text) == expected


BAD = [
    ("", "empty"),
    ("   ", "empty"),
    ("Database=d;User Id=u;Password=%s" % PW, "Server"),
    ("Server=h;Database=d;Password=%s" % PW, "User Id"),
    ("Server=h;User Id=u;", "Password"),
    ("Server=h;User Id=u;Password=", "Password"),
    ("Server=h;User Id=@srv;Password=%s" % PW, "User Id"),
    ("postgresql://u:%s@h:5432/db" % PW, "format"),
    ('{"server": "h", "password": "%s"}' % PW, "format"),
    ("just some text with %s in it" % PW, "ADO.NET"),
    ("Server=h;User Id=u;Password=%s;garbage" % PW, "ADO.NET"),
    ("Server=h;User Id=u;Password=\"%s" % PW, "quote"),
    ("Server=h;User Id=u;Password=%s;Port=abc" % PW, "Port"),
    ("Server=h;User Id=u;Password=%s;Port=70000" % PW, "Port"),
    ("Server=h;User Id=u;Password=%s;Ssl Mode=sometimes" % PW, "Ssl Mode"),
    ("=v;Server=h;User Id=u;Password=%s" % PW, "key"),
]


@pytest.mark.parametrize("text,needle", BAD)
def test_parse_ado_bad(text, needle):
    with pytest.raises(ValueError) as ei:
        pg.parse_ado_connection_string(text)
    msg = str(ei.value)
    assert needle in msg
    for part in (PW, "S3cr3t", "Pa=ss"):
        assert part not in msg


def test_parse_ado_not_text():
    with pytest.raises(ValueError):
        pg.parse_ado_connection_string(None)


@pytest.mark.parametrize("password", ["simple", PW, " lead and trail ", "semi;colon", "x\"y'z", "ünïcödé"])
def test_build_parse_round_trip(password):
    text = pg.build_ado_connection_string("srv.postgres.database.azure.com", 5432, "postgres", "azureuser@srv",
                                          password)
    assert text.startswith("Server=srv.postgres.database.azure.com;Database=postgres;Port=5432;")
    assert text.endswith("Ssl Mode=Require;")
    parsed = pg.parse_ado_connection_string(text)
    assert parsed == dict(host="srv.postgres.database.azure.com", port=5432, database="postgres",
                          user="azureuser", password=password, ssl_mode="require")


def test_build_ssl_modes():
    assert pg.build_ado_connection_string("h", 1, None, "u", "p", "verify-full") == \
        "Server=h;Port=1;User Id=u;Password=p;Ssl Mode=VerifyFull;"
    with pytest.raises(ValueError):
        pg.build_ado_connection_string("h", 1, None, "u", "p", "bogus")


def test_scrub_and_classify():
    err = pg._classify('psql: error: connection to server at "127.0.0.1", port 1 failed: FATAL:  password '
                       'authentication failed for user "u"', "x", password="hunter22")
    assert isinstance(err, pg.LoginFailed) and err.reason.startswith("password authentication failed")
    assert "hunter22" not in pg._scrub("the password hunter22 leaked", "hunter22")
    assert "'***'" in pg._scrub("ALTER ROLE x PASSWORD 'abc''def'")


# --------------------------------------------------------------------------------------------------
# benchmark (opt-in): restore_database of a ~100 MB database vs a direct pg_restore

@needs_pg
@pytest.mark.skipif(os.environ.get("DPEMULATOR_PG_BENCH") != "1", reason="set DPEMULATOR_PG_BENCH=1 to run")
@pytest.mark.parametrize("jobs", [1, 2])
def test_bench_restore_100mb(cluster, pg_base, jobs):
    db = "bench100"
    dump = os.path.join(pg_base[0], "bench100.dump")
    if not os.path.exists(dump):
        pg.create_database(cluster, db)
        pg.run_sql(cluster, db, "CREATE TABLE big (id bigint PRIMARY KEY, grp int, name text, payload text, "
                   "amount numeric(12,2), created timestamptz); "
                   "INSERT INTO big SELECT g, g % 1000, 'name-' || g, md5(g::text) || md5((g * 7)::text), "
                   "(g % 100000) / 100.0, timestamptz '2020-01-01' + g * interval '1 second' "
                   "FROM generate_series(1, 800000) g; CREATE INDEX big_grp ON big (grp); ANALYZE big")
        size = int(pg.run_sql(cluster, db, "SELECT pg_database_size(current_database())"))
        t = time.monotonic()
        pg.dump_database(cluster, db, dump)
        print("\nsource database %.1f MB, dump %.1f MB in %.2fs" % (size / 1e6, os.path.getsize(dump) / 1e6,
                                                                    time.monotonic() - t))
        pg.drop_database(cluster, db)

    def direct():
        env = dict(os.environ, **cluster.env(RESTORER, RESTORER_PW))
        subprocess.run(["createdb", "-w", "-T", "template0", "direct_db"], env=env, check=True)
        t0 = time.monotonic()
        argv = ["pg_restore", "-w", "--no-owner", "--no-acl", "-d", "direct_db", dump]
        if jobs > 1:
            argv[1:1] = ["-j", str(jobs)]
        subprocess.run(argv, env=env, check=True)
        return time.monotonic() - t0

    def ours():
        t0 = time.monotonic()
        pg.restore_database(HOST, cluster.port, RESTORER, RESTORER_PW, "ours_db", dump, jobs=jobs)
        return time.monotonic() - t0

    results = {"direct": [], "ours": []}
    for _ in range(int(os.environ.get("DPEMULATOR_PG_BENCH_RUNS", "3"))):
        for label, fn, name in (("direct", direct, "direct_db"), ("ours", ours, "ours_db")):
            pg.run_sql(cluster, "postgres", "CHECKPOINT")
            results[label].append(fn())
            pg.drop_database(cluster, name)
    best = {k: min(v) for k, v in results.items()}
    ratio = best["ours"] / best["direct"]
    print("\njobs=%d direct pg_restore %s best %.2fs; restore_database %s best %.2fs (incl. createdb); "
          "ratio %.3f" % (jobs, ["%.2f" % x for x in results["direct"]], best["direct"],
                          ["%.2f" % x for x in results["ours"]], best["ours"], ratio))
    assert ratio <= 1.2

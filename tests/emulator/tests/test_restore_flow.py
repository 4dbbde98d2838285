"""The whole flow on real PostgreSQL: backup, newer rows on the source, restore as database (the
backup-time rows only), restore as files (pg_restore of the blob gives the same data), archive +
rehydration, flexible server as files."""
import os
import tempfile

import requests

from dpemulator import postgres as pg

from dpemu_helpers import db_request, files_request, unique


def _source(emu):
    s = emu.servers()["sourceossserver"]
    return pg.attach(s["host"], s["port"], s["admin_user"], s["admin_password"])


def _target(emu, name="targetossserver"):
    s = emu.servers()[name]
    return pg.attach(s["host"], s["port"], s["admin_user"], s["admin_password"])


def _restore(emu, bi_id, body):
    r = emu.arm("POST", bi_id + "/restore", body)
    assert r.status_code == 202 and r.content == b"" and r.headers["Content-Length"] == "0", r.text
    assert "/operationStatus/" in r.headers["Azure-AsyncOperation"]
    assert "/operationResults/" in r.headers["Location"] and r.headers["Retry-After"]
    op = emu.poll_operation(r)
    assert op["status"] == "Succeeded", op
    return emu.wait_job(op["properties"]["jobId"])


def _blob_get(emu, name, container="restored-files"):
    return requests.get("%s/blob/targetossstorage/%s/%s" % (emu.url, container, name), verify=emu.ca,
                        headers={"Authorization": "Bearer " + emu.token("https://storage.azure.com/.default"),
                                 "x-ms-version": "2023-11-03"})


def test_backup_then_restore_as_database_has_backup_time_rows(emu):
    src = _source(emu)
    bi = emu.bi("empdb11")
    # Ad hoc backup through the API: a real pg_dump, a Backup job and a new recovery point.
    r = emu.arm("POST", bi["id"] + "/backup", {"backupRuleOptions": {"ruleName": "BackupWeekly",
                                                                     "triggerOption": {"retentionTagOverride": "Default"}}})
    op = emu.poll_operation(r)
    assert op["status"] == "Succeeded"
    job = emu.wait_job(op["properties"]["jobId"])
    assert job["properties"]["status"] == "Completed" and job["properties"]["operationCategory"] == "Backup"
    rp_id = job["properties"]["extendedInfo"]["targetRecoverPoint"]["recoveryPointID"]
    at_backup = pg.table_counts(src.host, src.port, src.admin_user, src.admin_password, "empdb11")
    # Newer data on the source must not appear in the restore of the older point.
    pg.run_sql(src, "empdb11", "INSERT INTO employees (first_name, last_name, email, dept_id, salary, hired_on) "
               "SELECT 'New', 'Hire', 'n' || g || '@x', 1, 1000, date '2024-01-01' FROM generate_series(1, 37) g")
    db = unique("emprestored")
    job = _restore(emu, bi["id"], db_request(emu, rp_id, db))
    props = job["properties"]
    assert props["status"] == "Completed", props
    assert props["operationCategory"] == "Restore" and props["operation"] == "Restore"
    ext = props["extendedInfo"]
    assert ext["recoveryDestination"].endswith("/servers/targetossserver/databases/" + db)
    assert ext["sourceRecoverPoint"]["recoveryPointID"] == rp_id
    assert ext["dataTransferedInBytes"] > 0 and ext["subTasks"][0]["taskStatus"] == "Completed"
    tgt = _target(emu)
    restored = pg.table_counts(tgt.host, tgt.port, tgt.admin_user, tgt.admin_password, db)
    assert restored == at_backup
    assert restored["public.employees"] + 37 == pg.table_counts(src.host, src.port, src.admin_user,
                                                                 src.admin_password, "empdb11")["public.employees"]
    # GET databases reflects the real cluster.
    r = emu.arm("GET", emu.server_id("targetossserver") + "/databases/" + db, params={"api-version": "2017-12-01"})
    assert r.status_code == 200 and r.json()["name"] == db


def test_restore_as_files_then_pg_restore_gives_same_data(emu):
    bi = emu.bi("empdb11")
    rp = emu.latest_point()
    prefix = unique("files")
    job = _restore(emu, bi["id"], files_request(emu, rp["name"], prefix))
    assert job["properties"]["status"] == "Completed", job
    assert job["properties"]["extendedInfo"]["recoveryDestination"] == \
        "%s/blob/targetossstorage/restored-files/%s" % (emu.url, prefix)
    # The blob list (XML, as Azure) shows the dump; the blob content is a pg_restore-able dump.
    r = requests.get("%s/blob/targetossstorage/restored-files" % emu.url, verify=emu.ca,
                     params={"restype": "container", "comp": "list", "prefix": prefix},
                     headers={"Authorization": "Bearer " + emu.token("https://storage.azure.com/.default"),
                              "x-ms-version": "2023-11-03"})
    assert r.status_code == 200 and "<Name>%s.dump</Name>" % prefix in r.text, r.text
    blob = _blob_get(emu, prefix + ".dump")
    assert blob.status_code == 200 and blob.content[:5] == b"PGDMP"
    tgt = _target(emu)
    db = unique("fromfiles")
    with tempfile.NamedTemporaryFile(suffix=".dump", delete=False) as fh:
        fh.write(blob.content)
    try:
        pg.restore_database(tgt.host, tgt.port, tgt.admin_user, tgt.admin_password, db, fh.name)
    finally:
        os.unlink(fh.name)
    # Same data as a database restore of the same point.
    db2 = unique("direct")
    job = _restore(emu, bi["id"], db_request(emu, rp["name"], db2))
    assert job["properties"]["status"] == "Completed"
    counts = lambda d: pg.table_counts(tgt.host, tgt.port, tgt.admin_user, tgt.admin_password, d)  # noqa: E731
    assert counts(db) == counts(db2) and counts(db)["public.employees"] >= 1000
    assert pg.run_sql(tgt, db, "SELECT md5(string_agg(email, ',' ORDER BY emp_id)) FROM employees") == \
        pg.run_sql(tgt, db2, "SELECT md5(string_agg(email, ',' ORDER BY emp_id)) FROM employees")


def test_archive_point_needs_rehydration_then_restores(emu):
    bi = emu.bi("empdb11")
    rp = emu.control("POST", "/backup", {"backup_instance": "sourceossserver/empdb11"})
    archived = emu.control("POST", "/archive", {"backup_instance": bi["id"], "recovery_point": rp["name"]})
    stores = archived["properties"]["recoveryPointDataStoresDetails"]
    assert [s["type"] for s in stores] == ["ArchiveStore"]
    # From VaultStore: refused, the point is archive-only.
    r = emu.arm("POST", bi["id"] + "/validateRestore",
                {"restoreRequestObject": db_request(emu, rp["name"], unique("arch"))})
    op = emu.poll_operation(r)
    assert op["status"] == "Failed" and op["error"]["code"] == "UserErrorRecoveryPointNotInVaultStore"
    # ArchiveStore without rehydration: refused too.
    r = emu.arm("POST", bi["id"] + "/validateRestore",
                {"restoreRequestObject": db_request(emu, rp["name"], unique("arch"), store="ArchiveStore")})
    assert emu.poll_operation(r)["error"]["code"] == "UserErrorRecoveryPointNotInVaultStore"
    # With rehydration: a rehydration sub-task, then the restore; the rehydrated copy has status/expiry.
    db = unique("rehydrated")
    job = _restore(emu, bi["id"], db_request(emu, rp["name"], db, store="ArchiveStore", rehydration="P12D"))
    props = job["properties"]
    assert props["status"] == "Completed", props
    assert [t["taskName"] for t in props["extendedInfo"]["subTasks"]] == ["Rehydrate Recovery Point",
                                                                          "Trigger Restore"]
    assert props["rehydrationPriority"] == "Standard" and props["sourceDataStoreName"] == "ArchiveStore"
    point = emu.arm("GET", bi["id"] + "/recoveryPoints/" + rp["name"]).json()
    copy = [s for s in point["properties"]["recoveryPointDataStoresDetails"] if s["type"] == "VaultStore"][0]
    assert copy["rehydrationStatus"] == "COMPLETED" and copy["rehydrationExpiryTime"]
    tgt = _target(emu)
    assert pg.table_counts(tgt.host, tgt.port, tgt.admin_user, tgt.admin_password, db)["public.employees"] >= 1000
    # The rehydrated copy now restores from VaultStore without a new rehydration.
    r = emu.arm("POST", bi["id"] + "/validateRestore",
                {"restoreRequestObject": db_request(emu, rp["name"], unique("again"))})
    assert emu.poll_operation(r)["status"] == "Succeeded"


def test_flexible_server_restores_as_files_per_database(emu):
    bi = emu.bi("sourceflexserver")
    assert bi["name"].startswith("sourceflexserver-")
    got = emu.arm("GET", bi["id"]).json()
    assert got["properties"]["dataSourceInfo"]["datasourceType"] == "Microsoft.DBforPostgreSQL/flexibleServers"
    rp = emu.latest_point("sourceflexserver")
    prefix = unique("flex")
    job = _restore(emu, bi["id"], files_request(emu, rp["name"], prefix, rehydration=None))
    assert job["properties"]["status"] == "Completed", job
    for db in ("inventory", "orders"):
        blob = _blob_get(emu, "%s_%s.sql" % (prefix, db))
        assert blob.status_code == 200 and blob.content[:5] == b"PGDMP"
    # the server-wide files Microsoft documents: roles, tablespaces, schema (plain SQL)
    roles = _blob_get(emu, "%s_roles.sql" % prefix)
    assert roles.status_code == 200 and b"CREATE ROLE flexadmin" in roles.content
    for name in ("tablespace", "schema"):
        assert _blob_get(emu, "%s_%s.sql" % (prefix, name)).status_code == 200

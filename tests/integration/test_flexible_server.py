# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Flexible server end to end on the emulator: a backup of sourceflexserver restored as files into Azurite, then loaded
by pg_restore_files_to_server into a new database of another flexible server (targetflexserver) over TLS
verify-full; the rows are the source's at the recovery point, not now. Then the module's idempotence, interruption
and bad-input behaviour against the same real parts (Azurite, PostgreSQL, the emulator's AAD and ARM)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(os.environ.get('DP_REPO_ROOT', ''), '.cache', 'azurite',
                                                                'node_modules', '.bin', 'azurite-blob'))
                                and not os.environ.get('DPEMULATOR_AZURITE'),
                                reason='Azurite is not installed (make installs it: scripts/ensure-azurite.sh)')

SOURCE, TARGET, DB = 'sourceflexserver', 'targetflexserver', 'orders'
SNAPSHOT_SQL = ("SELECT (SELECT count(*) FROM employees), "
                "(SELECT md5(string_agg(e::text, '|' ORDER BY emp_id)) FROM employees e), "
                "(SELECT count(*) FROM departments)")
MARKER_SQL = ("INSERT INTO employees (first_name, last_name, email, dept_id, salary, hired_on, notes) "
              "VALUES ('Marker', '{tag}', '{tag}@example.test', 1, 1, current_date, 'flexible marker')")


def azurite_container(emulator, container='restored-files'):
    return '%stargetossstorage/%s' % (emulator.env['DPEMULATOR_BLOB_URL'], container)


def storage_account_id(emulator):
    return '/subscriptions/%s/resourceGroups/targetrg/providers/Microsoft.Storage/storageAccounts/targetossstorage' % (
        emulator.sub)


def target_login(emulator):
    info = emulator.server(TARGET)
    return {'host': info['host'], 'port': int(info['port']), 'login_user': info['admin_user'],
            'login_password': info['admin_password'], 'ssl_root_cert': emulator.ca}


@pytest.fixture(scope='module')
def point(emulator):
    """A backup of sourceflexserver between two marker rows: (recovery point, snapshot of orders at the point)."""
    emulator.wait_idle()
    emulator.psql(SOURCE, DB, MARKER_SQL.format(tag='flex_before'))
    rp = emulator.backup(SOURCE)
    snap = emulator.psql(SOURCE, DB, SNAPSHOT_SQL)[0]
    emulator.psql(SOURCE, DB, MARKER_SQL.format(tag='flex_after'))
    assert emulator.psql(SOURCE, DB, SNAPSHOT_SQL)[0] != snap
    return rp, snap


@pytest.fixture(scope='module')
def restored_files(emulator, point, run_module):
    """A finished restore as files of the point into Azurite: (job id, prefix)."""
    return restore_as_files(emulator, run_module, point[0], 'flexfiles-' + uuid.uuid4().hex[:8])


def restore_as_files(emu, run_module, rp, prefix):
    """Restore point `rp` of sourceflexserver as files into Azurite of `emu` and wait: (job id, prefix)."""
    _result, record = run_module('pg_restore', {
        'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG',
        'backup_instance_name': emu.backup_instance(SOURCE)['name'], 'recovery_point_id': rp['name'],
        'target_container_url': azurite_container(emu), 'target_file_prefix': prefix, 'wait': True,
        'poll_interval': 1}, emulator=emu)
    assert record['status'] == 'changed', record
    return record['result']['job_id'], prefix


def load(run_module, emulator, files, check=False, **params):
    job_id, _prefix = files
    args = dict({'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG', 'job_id': job_id,
                 'source_database': DB}, **target_login(emulator))
    args.update(params)
    return run_module('pg_restore_files_to_server', args, check=check)


def test_one_playbook_run_restores_a_flexible_database_at_the_point(emulator, point, run_playbook, unique_name):
    rp, snap = point
    target_db = unique_name('flexrestored')
    info = emulator.server(TARGET)
    extravars = {'vault_name': 'TestBkpVault', 'vault_resource_group': 'testBkpVaultRG',
                 'backup_instance_name': emulator.backup_instance(SOURCE)['name'], 'recovery_point_id': rp['name'],
                 'target_container_url': azurite_container(emulator),
                 # the emulator's account names its own /blob/ plane as primary endpoint, not Azurite: say which
                 'target_storage_account_id': storage_account_id(emulator),
                 'target_file_prefix': unique_name('flexpb').replace('_', '-'),
                 'target_host': info['host'], 'target_port': info['port'], 'source_database': DB,
                 'target_database': target_db, 'login_user': info['admin_user'],
                 'login_password': info['admin_password'], 'ssl_root_cert': emulator.ca, 'poll_interval': 1,
                 'validate_delay': 1, 'jobs': 2}
    first = run_playbook('restore_flexible_server', extravars)
    first.assert_ok()
    restored = emulator.psql(TARGET, target_db, SNAPSHOT_SQL)[0]
    assert restored == snap                     # count and checksum as of the point
    assert restored != emulator.psql(SOURCE, DB, SNAPSHOT_SQL)[0]       # not the source now
    markers = {r[0] for r in emulator.psql(TARGET, target_db, "SELECT last_name FROM employees "
                                           "WHERE first_name = 'Marker'")}
    assert 'flex_before' in markers and 'flex_after' not in markers
    loaded = first.task('Load the restored files')['result']
    assert loaded['loaded'] is True and loaded['tables']['public.employees'] == int(snap[0])
    assert not Path(loaded['work_dir']).exists()                   # local files removed
    # a second run: nothing changes anywhere
    second = run_playbook('restore_flexible_server', extravars)
    second.assert_ok()
    assert second.changed == 0, [r['task'] for r in second.results if r['status'] == 'changed']
    assert emulator.psql(TARGET, target_db, SNAPSHOT_SQL)[0] == snap


def test_check_mode_says_what_it_would_download_and_load(emulator, restored_files, run_module, unique_name):
    target_db = unique_name('flexcheck')
    result, record = load(run_module, emulator, restored_files, target_database=target_db, check=True)
    assert record['status'] == 'changed', result.output
    res = record['result']
    assert res['loaded'] is False and 'Would download' in res['msg'] and target_db in res['msg']
    assert res['files']['archive'] == '%s_%s.sql' % (restored_files[1], DB)
    assert sorted(res['files']['server_files']) == ['roles', 'schema', 'tablespace']
    assert target_db not in emulator.databases(TARGET)


def test_resume_a_broken_download_and_never_load_twice(emulator, restored_files, run_module, unique_name, tmp_path):
    """A download cut off by a killed run leaves '<work>/archive.dump.part' and its ETag; the next run continues from
    there with a ranged read (resumed_from), the MD5 of the whole file is checked, and the load happens once."""
    target_db = unique_name('flexresume')
    download_dir = tmp_path / 'dl'
    download_dir.mkdir(mode=0o700)
    # a first run in check mode tells where the work folder is and what the blob is
    _r, checked = load(run_module, emulator, restored_files, target_database=target_db, check=True,
                       download_dir=str(download_dir))
    work = Path(checked['result']['work_dir'])
    size = checked['result']['files']['size']
    from azure.identity import ClientSecretCredential  # pylint: disable=import-outside-toplevel
    from azure.storage.blob import ContainerClient  # pylint: disable=import-outside-toplevel
    cred = ClientSecretCredential(emulator.env['AZURE_TENANT'], emulator.env['AZURE_CLIENT_ID'],
                                  emulator.env['AZURE_SECRET'], authority=emulator.url,
                                  disable_instance_discovery=True, connection_verify=emulator.ca)
    blob = ContainerClient.from_container_url(azurite_container(emulator), credential=cred,
                                              connection_verify=emulator.ca) \
        .get_blob_client(checked['result']['files']['archive'])
    head = blob.download_blob(offset=0, length=size // 2).readall()
    work.mkdir(mode=0o700)
    (work / 'archive.dump.part').write_bytes(head)       # what a killed download leaves
    (work / 'archive.dump.etag').write_text(blob.get_blob_properties().etag)
    _r, first = load(run_module, emulator, restored_files, target_database=target_db, download_dir=str(download_dir))
    assert first['status'] == 'changed', first
    assert first['result']['download']['resumed_from'] == size // 2
    assert first['result']['download']['bytes'] == size - size // 2
    assert first['result']['tables']['public.employees'] > 0
    _r, again = load(run_module, emulator, restored_files, target_database=target_db, download_dir=str(download_dir))
    assert again['status'] == 'ok' and again['result']['loaded'] is False
    assert again['result']['database']['state'] == 'complete'


def test_an_interrupted_load_is_dropped_and_loaded_again(emulator, restored_files, run_module, unique_name):
    """A database our module created but did not finish (the task killed during pg_restore: marker 'loading') is
    dropped and loaded again; the rows are there once."""
    target_db = unique_name('flexinterrupted')
    _r, first = load(run_module, emulator, restored_files, target_database=target_db)
    assert first['status'] == 'changed'
    rows = emulator.psql(TARGET, target_db, 'SELECT count(*) FROM employees')[0][0]
    # what a kill during pg_restore leaves: the marker says 'loading', the load stopped half-way
    comment = emulator.psql(TARGET, 'postgres', "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                            "WHERE datname = '%s'" % target_db)[0][0]
    loading = comment.replace('complete', 'loading')
    emulator.psql(TARGET, 'postgres', "COMMENT ON DATABASE %s IS '%s'" % (target_db, loading))
    emulator.psql(TARGET, target_db, 'DELETE FROM employees WHERE emp_id % 2 = 0')
    _r, again = load(run_module, emulator, restored_files, target_database=target_db)
    assert again['status'] == 'changed' and again['result']['database']['state'] == 'interrupted', again
    assert emulator.psql(TARGET, target_db, 'SELECT count(*) FROM employees')[0][0] == rows


def test_a_database_not_loaded_by_us_is_never_touched(emulator, restored_files, run_module, unique_name):
    target_db = unique_name('flexforeign')
    emulator.psql(TARGET, 'postgres', 'CREATE DATABASE %s' % target_db)
    emulator.psql(TARGET, target_db, 'CREATE TABLE precious (x int); INSERT INTO precious VALUES (42)')
    _r, record = load(run_module, emulator, restored_files, target_database=target_db)
    assert record['status'] == 'failed'
    assert record['result']['error']['code'] == 'DatabaseAlreadyExists' and 'overwrite' in record['result']['msg']
    assert emulator.psql(TARGET, target_db, 'SELECT x FROM precious') == [('42',)]
    _r, record = load(run_module, emulator, restored_files, target_database=target_db, overwrite=True)
    assert record['status'] == 'changed', record
    assert emulator.psql(TARGET, target_db, "SELECT count(*) FROM pg_tables WHERE tablename = 'precious'") == [('0',)]


@pytest.mark.parametrize('case, params, code, says', [
    ('wrong password', {'login_password': 'not-the-password'}, 'PostgreSQLLogin', 'password'),
    ('server unreachable', {'port': 1}, 'PostgreSQLUnreachable', 'reach'),
    ('no TLS trust', {'ssl_root_cert': '/etc/ssl/certs/ca-certificates.crt'}, 'PostgreSQLTls', 'ssl_root_cert'),
    ('unknown database file', {'source_database': 'nosuchdb'}, None, 'source_database'),
])
def test_bad_target_input_fails_clearly_and_leaves_nothing(emulator, restored_files, run_module, unique_name,
                                                           case, params, code, says):
    target_db = unique_name('flexbad')
    _r, record = load(run_module, emulator, restored_files, target_database=target_db, **params)
    assert record['status'] == 'failed', (case, record)
    assert says in record['result']['msg'], (case, record['result']['msg'])
    if code:
        assert record['result']['error']['code'] == code, (case, record['result'])
    assert target_db not in emulator.databases(TARGET)
    assert 'not-the-password' not in str(record)


def test_missing_container_and_gone_files(emulator, run_module, unique_name):
    base = dict(target_login(emulator), target_database=unique_name('flexgone'), source_database=DB)
    missing = azurite_container(emulator, 'no-such-container')
    _r, record = run_module('pg_restore_files_to_server', dict(base, container_url=missing, file_prefix='x'))
    assert record['status'] == 'failed' and record['result']['error']['code'] == 'ContainerNotFound', record
    gone = dict(base, container_url=azurite_container(emulator), file_prefix='never-restored')
    _r, record = run_module('pg_restore_files_to_server', gone)
    assert record['status'] == 'failed' and record['result']['error']['code'] == 'RestoredFilesNotFound', record
    assert 'run the restore as files again' in record['result']['msg']


def test_no_blob_permission_says_which_role(emulator, restored_files, run_module, unique_name):
    """Against Azurite, behind the emulator's authorizing gate (blobgate.py: Azure's blob data RBAC, which Azurite
    lacks): an identity with Reader only is refused the restored files as Azure refuses it, and the message says which
    role to grant to whom on which account and container. Nothing is created on the target."""
    env = {'AZURE_CLIENT_ID': '5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a803', 'AZURE_SECRET': 'emu-readonly-secret-Lm3'}
    target_db = unique_name('flexperm')
    _r, record = run_module('pg_restore_files_to_server', dict(
        target_login(emulator), target_database=target_db, source_database=DB,
        container_url=azurite_container(emulator), file_prefix=restored_files[1]), env=env)
    assert record['status'] == 'failed', record
    assert record['result']['error']['code'] == 'AuthorizationPermissionMismatch'
    msg = record['result']['msg']
    assert ("Assign 'Storage Blob Data Reader' (or 'Storage Blob Data Contributor', to delete the files afterwards) "
            "to the identity that runs Ansible (object id 2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d03 (application "
            "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a803)) on the storage account 'targetossstorage' or its container "
            "'restored-files'") in msg, msg
    assert target_db not in emulator.databases(TARGET)


def test_a_pg_restore_error_half_way_drops_the_database(emulator, restored_files, run_module, unique_name):
    """--exit-on-error: the load stops at the first error (here: --role names a role that does not exist), the
    half-made database is dropped, and a re-run without the cause loads it."""
    target_db = unique_name('flexerror')
    _r, record = load(run_module, emulator, restored_files, target_database=target_db, role='no_such_role')
    assert record['status'] == 'failed', record
    assert record['result']['error']['code'].startswith('PostgreSQL') and 'no_such_role' in record['result']['msg']
    assert target_db not in emulator.databases(TARGET)
    _r, record = load(run_module, emulator, restored_files, target_database=target_db)
    assert record['status'] == 'changed', record


def test_delete_blobs_removes_the_loaded_archive_only(emulator, point, run_module, unique_name):
    files = restore_as_files(emulator, run_module, point[0], unique_name('flexdel').replace('_', '-'))
    prefix = files[1]
    _r, record = load(run_module, emulator, files, target_database=unique_name('flexd'), delete_blobs=True)
    assert record['status'] == 'changed', record
    assert record['result']['blobs_deleted'] == ['%s_%s.sql' % (prefix, DB)]


def test_flexible_path_at_vvvv_leaks_no_secret(emulator, point, run_playbook, run_module, unique_name):
    """The whole flexible path at -vvvv with the server login read from a Key Vault connection string: no secret in
    stdout, stderr, any task result or the emulator's log; then a wrong password at -vvvv does not show either."""
    from test_secrets import leaks  # pylint: disable=import-outside-toplevel,import-error
    rp, snap = point
    info = emulator.server(TARGET)
    secret = unique_name('flexconn').replace('_', '-')
    _r, stored = run_module('keyvault_secret', {
        'vault_uri': emulator.kv_uri('targetosskv'), 'name': secret,
        'connection': {'host': 'targetflexserver.postgres.database.azure.com', 'user': info['admin_user'],
                       'password': info['admin_password']}})
    assert stored['status'] == 'changed', stored
    connection_string = emulator.arm('GET', emulator.kv_uri('targetosskv') + 'secrets/' + secret,
                                     params={'api-version': '7.4'}, scope='https://vault.azure.net/.default'
                                     ).json()['value']
    target_db = unique_name('flexvvvv')
    extravars = {'vault_name': 'TestBkpVault', 'vault_resource_group': 'testBkpVaultRG',
                 'backup_instance_name': emulator.backup_instance(SOURCE)['name'], 'recovery_point_id': rp['name'],
                 'target_container_url': azurite_container(emulator),
                 'target_storage_account_id': storage_account_id(emulator),
                 'target_file_prefix': unique_name('flexv').replace('_', '-'), 'target_host': info['host'],
                 'target_port': info['port'], 'source_database': DB, 'target_database': target_db,
                 'login_secret_uri': emulator.kv_uri('targetosskv') + 'secrets/' + secret,
                 'ssl_root_cert': emulator.ca, 'poll_interval': 1, 'validate_delay': 1}
    log_offset = len(emulator.log_text())
    run = run_playbook('restore_flexible_server', extravars, verbosity=4).assert_ok()
    assert emulator.psql(TARGET, target_db, SNAPSHOT_SQL)[0] == snap
    secrets = set(emulator.secret_values()) | {connection_string, emulator.token(),
                                               emulator.token('https://storage.azure.com/.default')}
    assert info['admin_password'] in secrets
    assert 'task path:' in run.stdout and '"invocation"' in run.stdout, 'not a -vvvv run'
    assert leaks(run.stdout, secrets) == [], 'secret in stdout'
    assert leaks(run.stderr, secrets) == [], 'secret in stderr'
    assert leaks(json.dumps(run.results), secrets) == [], 'secret in a task result'
    assert leaks(emulator.log_text()[log_offset:], secrets) == [], 'secret in the emulator log'
    # a wrong password, at -vvvv: the failure says what to check and shows no password
    wrong = 'Wrong-Flex-Pw-0000'
    failed = run_playbook('restore_flexible_server', dict(extravars, login_secret_uri='', login_user=info['admin_user'],
                                                          login_password=wrong, target_database=target_db + 'x'),
                          verbosity=4)
    assert failed.rc != 0 and 'login_user and the password' in failed.output
    assert leaks(failed.output + json.dumps(failed.results), secrets | {wrong}) == []


def test_a_wrong_azure_secret_or_login_secret_says_which(emulator, run_module, unique_name, tmp_path):
    base = dict(target_login(emulator), target_database=unique_name('flexsecret'), source_database=DB,
                container_url=azurite_container(emulator), file_prefix='x')
    # a token cache of its own: a token cached by an earlier test would stand in for the secret
    env = {'AZURE_SECRET': 'not-the-client-secret', 'AZURE_BACKUP_CACHE_DIR': str(tmp_path)}
    _r, record = run_module('pg_restore_files_to_server', base, env=env)
    assert record['status'] == 'failed', record
    assert record['result']['error']['code'] == 'AADSTS7000215' and 'not-the-client-secret' not in str(record)
    no_secret = dict(base, login_secret_uri=emulator.kv_uri('targetosskv') + 'secrets/no-such-secret')
    no_secret.pop('login_password')
    _r, record = run_module('pg_restore_files_to_server', no_secret)
    assert record['status'] == 'failed' and record['result']['error']['code'] == 'SecretNotFound', record
    assert base['target_database'] not in emulator.databases(TARGET)

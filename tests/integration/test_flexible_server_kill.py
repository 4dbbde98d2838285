# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pg_restore_files_to_server killed for real (SIGKILL of ansible-playbook and everything below it) during the download
and during pg_restore, then run again: it finishes, the rows are right and nothing is loaded twice. A flexible server
database of some tens of MB (an emulator of its own, so that the other tests' backups stay small) makes both phases
last long enough to be caught."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from conftest import _descendants, play_text  # pylint: disable=import-error
from test_flexible_server import DB, SOURCE, TARGET, restore_as_files  # pylint: disable=import-error
from test_flexible_server import pytestmark as AZURITE_NEEDED  # pylint: disable=import-error

pytestmark = AZURITE_NEEDED

ROWS = 300000
COUNT_SQL = "SELECT count(*), md5(string_agg(id::text || pad, ',' ORDER BY id)) FROM bulk"


@pytest.fixture(scope='module')
def big(emulator_session_factory, run_module):
    emu = emulator_session_factory('granted')
    emu.psql(SOURCE, DB, "CREATE TABLE bulk (id int PRIMARY KEY, pad text); INSERT INTO bulk SELECT g, "
             "md5(g::text) || md5((g * 7)::text) FROM generate_series(1, %d) g" % ROWS)
    rp = emu.backup(SOURCE)
    snap = emu.psql(SOURCE, DB, COUNT_SQL)[0]
    job_id, _prefix = restore_as_files(emu, run_module, rp, 'flexbig-' + uuid.uuid4().hex[:8])
    return emu, job_id, snap


def _task(emu, job_id, target_db, download_dir):
    info = emu.server(TARGET)
    return [{'name': 'Load', 'module': 'pg_restore_files_to_server', 'params': {
        'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG', 'job_id': job_id, 'source_database': DB,
        'target_database': target_db, 'host': info['host'], 'port': int(info['port']),
        'login_user': info['admin_user'], 'login_password': info['admin_password'], 'ssl_root_cert': emu.ca,
        'download_dir': str(download_dir)}}]


def _loading_below(root):
    """Whether the load's pg_restore (not its 'pg_restore -l', nor another test's or the emulator's) runs below
    `root`."""
    for pid in _descendants(root):
        try:
            argv = Path('/proc/%d/cmdline' % pid).read_bytes().split(b'\0')
        except OSError:
            continue
        if argv and argv[0].endswith(b'pg_restore') and b'--exit-on-error' in argv:
            return True
    return False


def _kill_when(running, ready, timeout=120):
    deadline = time.monotonic() + timeout
    while not ready():
        assert running.proc.poll() is None, 'the run ended before it could be killed'
        assert time.monotonic() < deadline, 'the moment to kill never came'
        time.sleep(0.005)
    running.kill()
    running.proc.wait(30)


def test_killed_during_the_download_resumes(big, run_playbook, tmp_path):
    emu, job_id, snap = big
    target_db = 'flexkilldl_' + uuid.uuid4().hex[:6]
    tasks = play_text(_task(emu, job_id, target_db, tmp_path))

    def partial():
        parts = list(tmp_path.glob('azure-backup-load-*/archive.dump.part'))
        return parts and 0 < parts[0].stat().st_size

    running = run_playbook.start(tasks, emulator=emu)
    _kill_when(running, partial)
    left = list(tmp_path.glob('azure-backup-load-*/archive.dump.part'))[0].stat().st_size
    if target_db in emu.databases(TARGET):               # pg_restore reads while the file downloads
        comment = emu.psql(TARGET, 'postgres', "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                           "WHERE datname = '%s'" % target_db)[0][0]
        assert '"loading"' in comment                     # ours, half-loaded: the re-run drops it
    again = run_playbook(tasks, emulator=emu).assert_ok()
    result = again.task('Load')['result']
    assert result['database']['state'] in ('absent', 'interrupted') and result['loaded'] is True
    assert result['download']['resumed_from'] >= left > 0
    assert result['download']['bytes'] + result['download']['resumed_from'] == result['files']['size']
    assert emu.psql(TARGET, target_db, COUNT_SQL)[0] == snap


def test_killed_during_pg_restore_is_loaded_again_once(big, run_playbook, tmp_path):
    emu, job_id, snap = big
    target_db = 'flexkillpg_' + uuid.uuid4().hex[:6]
    tasks = play_text(_task(emu, job_id, target_db, tmp_path))
    running = run_playbook.start(tasks, emulator=emu)
    _kill_when(running, lambda: _loading_below(running.proc.pid))
    comment = emu.psql(TARGET, 'postgres', "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                       "WHERE datname = '%s'" % target_db)[0][0]
    assert '"loading"' in comment                         # our half-loaded database, so marked
    again = run_playbook(tasks, emulator=emu).assert_ok()
    result = again.task('Load')['result']
    assert result['database']['state'] == 'interrupted' and result['loaded'] is True
    assert emu.psql(TARGET, target_db, COUNT_SQL)[0] == snap      # every row once
    third = run_playbook(tasks, emulator=emu).assert_ok()
    assert third.changed == 0

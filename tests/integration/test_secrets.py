# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A restore that starts from nothing (demo world: the vault identity has no restore permission, the connection
string secret does not exist), run at -vvvv: the role stores the connection string in Key Vault from the admin
login, grants the vault identity what the restore needs, restores, and a second run changes nothing.

The same run proves that no secret leaks: no secret value appears in stdout, stderr, any task result the callbacks
got, or the emulator's log. The values looked for are the world's (service principal secrets, server and role
passwords), env.json's (control token, identity header), the connection string the role wrote (read back from Key
Vault after the run), and any bearer token (a JWT: what the emulator issues).
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

JWT = re.compile(r'eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}')


def leaks(text, values):
    found = [value for value in values if value in text]
    found += ['bearer token %s...' % match[:12] for match in JWT.findall(text)]
    return found


def test_leak_detection_works():
    """The detector itself: a value or a JWT in a text is found, a clean text is clean."""
    token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4eHh4eHh4In0.c2lnbmF0dXJlLXZhbHVl'
    assert leaks('x Password="Tgt-Admin-Pw-5512"; y', {'Tgt-Admin-Pw-5512'}) == ['Tgt-Admin-Pw-5512']
    assert leaks('Authorization: Bearer %s' % token, set()) == ['bearer token eyJhbGciOiJI...']
    assert leaks('Password=********', {'Tgt-Admin-Pw-5512'}) == []


def test_demo_world_restore_at_vvvv_grants_creates_and_leaks_nothing(demo_emulator, run_role, unique_name,
                                                                     restore_checks):
    demo = demo_emulator  # nobody else grants on targetossserver/targetosskv in this emulator
    target = demo.server('targetossserver')
    tag, database, secret = unique_name('demo'), unique_name('demodb'), unique_name('conn').replace('_', '-')
    point, state = restore_checks.backup_between_markers(demo, tag)
    role_vars = {
        'postgresql_restore_vault_name': 'TestBkpVault',
        'postgresql_restore_vault_resource_group': 'testBkpVaultRG',
        'postgresql_restore_backup_instance_name': demo.backup_instance('empdb11')['name'],
        'postgresql_restore_target_server_id': demo.server_id('targetossserver'),
        'postgresql_restore_target_database_name': database,
        'postgresql_restore_key_vault_uri': demo.kv_uri('targetosskv'),
        'postgresql_restore_secret_name': secret,
        'postgresql_restore_admin_user': target['admin_user'] + '@targetossserver',
        'postgresql_restore_admin_password': target['admin_password'],
    }
    assignments = demo.status()['role_assignments']
    restores_before = demo.counters().get('restores_requested', 0)
    log_offset = len(demo.log_text())

    first = run_role(role_vars, verbosity=4, emulator=demo).assert_ok()

    # --- what the role did: secret stored, permissions granted, restored as of the point
    summary = first.task('Show the result')['result']['postgresql_restore_result']
    assert summary['status'] == 'Completed' and summary['recovery_point_id'] == point['name']
    granted = {(g['role'], g['scope'].rsplit('/', 1)[-1]) for g in summary['granted']}
    assert ('Reader', 'targetossserver') in granted and ('Key Vault Secrets User', 'targetosskv') in granted
    assert demo.status()['role_assignments'] == assignments + len(summary['granted'])
    stored_task = first.task('Restore (recovery point, earlier restore, permissions, validation, restore, wait)')
    assert stored_task['status'] == 'changed' and stored_task['result']['secret']['changed'] is True
    stored = demo.arm('GET', demo.kv_uri('targetosskv') + 'secrets/' + secret, params={'api-version': '7.4'},
                      scope='https://vault.azure.net/.default')
    assert stored.status_code == 200, stored.text
    connection_string = stored.json()['value']
    assert target['admin_password'] in connection_string
    restore_checks.assert_restored_as_of(demo, database, state, tag)

    # --- nothing secret anywhere
    secrets = set(demo.secret_values()) | {connection_string, demo.token(), demo.token('https://vault.azure.net/.default')}
    assert target['admin_password'] in secrets and demo.env['AZURE_SECRET'] in secrets
    # at -vvvv the task path and every result, with the module's invocation, are printed
    assert 'task path:' in first.stdout and '"invocation"' in first.stdout, 'not a -vvvv run'
    assert leaks(first.stdout, secrets) == [], 'secret in stdout'
    assert leaks(first.stderr, secrets) == [], 'secret in stderr'
    assert leaks(json.dumps(first.results), secrets) == [], 'secret in a task result'
    # the task that handles the password shows its options, the password masked (a no_log option)
    assert stored_task['result']['invocation']['module_args']['secret_connection']['password'] == \
        'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
    log = demo.log_text()[log_offset:]
    assert '/restore' in log and '/keyvaults/targetosskv/secrets/' in log, 'the emulator log missed the run'
    assert leaks(log, secrets) == [], 'secret in the emulator log'
    # the token cache holds tokens (that is what it is for), never the client secret or a password
    cache = Path(demo.env['AZURE_BACKUP_CACHE_DIR'])
    cached = [p for p in cache.iterdir() if p.is_file()]
    assert any(p.name.startswith('msal_token_cache') for p in cached), sorted(p.name for p in cached)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in cached)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    cached_text = ''.join(p.read_text() for p in cached)
    for value in set(demo.secret_values()) | {connection_string, demo.env['AZURE_SECRET'], target['admin_password']}:
        assert value not in cached_text, 'a secret in the token cache'

    # --- the same inputs again: the secret and the grants are there, the job is found, nothing changes
    second = run_role(role_vars, emulator=demo).assert_ok()
    assert second.changed == 0, second.tail()
    assert second.task('Show the result')['result']['postgresql_restore_result']['job_id'] == summary['job_id']
    assert demo.counters().get('restores_requested', 0) == restores_before + 1
    assert demo.status()['role_assignments'] == assignments + len(summary['granted'])
    assert leaks(second.output, secrets) == []

# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""No secret leaks: a full role restore at -vvvv that writes the connection string into Key Vault from the admin
login, then a check that no secret value appears anywhere: stdout, stderr, every task result the callbacks got,
and the emulator's log. The values looked for are the world's (service principal secrets, server passwords), the
env file's (control token, identity header), the connection string the role wrote (read back from Key Vault after
the run), and any bearer token (a JWT, which is what the emulator issues)."""

from __future__ import annotations

import json
import re

JWT = re.compile(r'eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}')


def _leaks(text, values):
    found = [value for value in values if value in text]
    found += ['bearer token %s...' % match[:12] for match in JWT.findall(text)]
    return found


def test_no_secret_in_verbose_output_results_or_log(emulator, run_role, unique_name):
    emulator.wait_idle()
    emulator.backup('empdb11')
    target = emulator.server('targetossserver')
    database, secret = unique_name('secretdb'), unique_name('leakcheck').replace('_', '-')
    role_vars = {
        'postgresql_restore_vault_name': 'TestBkpVault',
        'postgresql_restore_vault_resource_group': 'testBkpVaultRG',
        'postgresql_restore_backup_instance_name': emulator.backup_instance('empdb11')['name'],
        'postgresql_restore_target_server_id': emulator.server_id('targetossserver'),
        'postgresql_restore_target_database_name': database,
        'postgresql_restore_key_vault_uri': emulator.kv_uri('targetosskv'),
        'postgresql_restore_secret_name': secret,
        'postgresql_restore_admin_user': target['admin_user'] + '@targetossserver',
        'postgresql_restore_admin_password': target['admin_password'],
    }
    log_offset = len(emulator.log_text())

    result = run_role(role_vars, verbosity=4).assert_ok()
    assert database in emulator.databases('targetossserver')
    assert result.task('Store the connection string of the target server in Key Vault')['status'] == 'changed'

    # the connection string the role stored (read back as the automation principal)
    stored = emulator.arm('GET', emulator.kv_uri('targetosskv') + 'secrets/' + secret, params={'api-version': '7.4'},
                          scope='https://vault.azure.net/.default')
    assert stored.status_code == 200, stored.text
    connection_string = stored.json()['value']
    assert target['admin_password'] in connection_string

    secrets = set(emulator.secret_values()) | {connection_string, emulator.token(),
                                               emulator.token('https://vault.azure.net/.default')}
    assert target['admin_password'] in secrets and emulator.env['AZURE_SECRET'] in secrets
    # the run really was verbose and did reach Azure
    assert '<localhost> EXEC' in result.stdout and 'pg_restore' in result.stdout

    assert _leaks(result.stdout, secrets) == [], 'secret in stdout'
    assert _leaks(result.stderr, secrets) == [], 'secret in stderr'
    assert _leaks(json.dumps(result.results), secrets) == [], 'secret in a task result'
    # the tasks that handle the password are censored, not merely quiet
    stored_task = result.task('Store the connection string of the target server in Key Vault')
    assert 'censored' in stored_task['result'], stored_task['result']
    log = emulator.log_text()[log_offset:]
    assert 'POST' in log and '/restore' in log, 'the emulator log did not record the run'
    assert _leaks(log, secrets) == [], 'secret in the emulator log'

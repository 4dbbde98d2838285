# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad input: each run fails with a message that says what to change, and makes no call it does not need (the
emulator counts every request by route)."""

from __future__ import annotations

import socket

import pytest

NOT_SERVICE = ('control.',)
POSTGRES_CHECK_ROUTES = ('metadata.', 'aad.')


def _calls(femu):
    """Requests the emulator served, by route, without the test's own control calls."""
    return {route: n for route, n in femu.request_counts().items()
            if not any(marker in route for marker in NOT_SERVICE)}


def _writes(calls):
    return {route: n for route, n in calls.items() if route.split(' ', 1)[0] in ('PUT', 'POST', 'PATCH', 'DELETE')
            and 'aad.' not in route}


def _arm(calls):
    return {route: n for route, n in calls.items() if not route.split(' ', 1)[1].startswith(POSTGRES_CHECK_ROUTES)}


def _message(result):
    failed = result.failed
    assert failed, result.tail()
    return failed[-1]['result'].get('msg', '')


def _datasource(femu):
    return '/subscriptions/%s/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/servers/sourceossserver' \
        '/databases/empdb11' % femu.sub


# ------------------------------------------------------------------------------------ malformed input (no call)

MALFORMED = {
    'target_server_id': ('/subscriptions/not-a-guid/resourceGroups/targetrg/servers/targetossserver',
                         '/subscriptions/<guid>/resourceGroups/'),
    'datasource_id': ('/subscriptions/%(sub)s/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/databases',
                      '/subscriptions/<guid>/resourceGroups/'),
    'secret_uri': ('https://example.com/no-secret-here', '/secrets/'),
}


@pytest.mark.parametrize('option', sorted(MALFORMED))
def test_malformed_input_fails_before_any_call(femu, play, option):
    """A malformed ARM id or a secret URI that is not a Key Vault secret URL: the playbook fails naming the option
    and the expected shape, before it sends a single request."""
    value, shape = MALFORMED[option]
    value = value % {'sub': femu.sub}
    values = femu.restore_vars('never_made')
    values[option] = value
    if option == 'datasource_id':
        del values['backup_instance_name']
    if option == 'secret_uri':
        for name in ('key_vault_uri', 'secret_name', 'admin_user', 'admin_password'):
            del values[name]
    result = play('restore_database', values).assert_failed()
    message = _message(result)
    assert option in message and shape in message and value in message, message
    assert _calls(femu) == {}, 'calls made for a malformed %s: %s' % (option, _calls(femu))


def test_flexible_target_server_is_refused_before_any_call(femu, play):
    """A flexible server as the target of a database restore: the role says to restore as files, before it stores
    a secret or grants anything."""
    values = femu.restore_vars('never_made')
    values['target_server_id'] = ('/subscriptions/%s/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/'
                                  'flexibleServers/targetflex' % femu.sub)
    message = _message(play('restore_database', values).assert_failed())
    assert 'is a flexible server' in message and 'restore as files' in message.lower(), message
    assert _calls(femu) == {}, 'calls made for a flexible target: %s' % _calls(femu)


@pytest.mark.parametrize('option', sorted(MALFORMED))
def test_malformed_input_module_fails_before_any_call(femu, play, option):
    """The same inputs given to pg_restore_validate: failed before any request, even the token or the metadata."""
    value, shape = MALFORMED[option]
    params = femu.module_target('never_made')
    femu.reset_counters()
    params[option] = value % {'sub': femu.sub}
    if option == 'datasource_id':
        del params['backup_instance_name']
    dummy, record = play.module('pg_restore_validate', params)
    assert record['status'] == 'failed'
    message = record['result']['msg']
    assert option in message and shape in message, message
    assert _calls(femu) == {}, _calls(femu)


# ------------------------------------------------------------------------------------ unknown resources (reads only)

def test_unknown_vault(femu, play):
    values = dict(femu.restore_vars('never_made'), vault_name='NoSuchVault')
    message = _message(play('restore_database', values).assert_failed())
    assert 'NoSuchVault' in message and 'vault_name' in message, message
    assert not _writes(_calls(femu)), _calls(femu)


def test_unknown_backup_instance(femu, play):
    values = dict(femu.restore_vars('never_made'), backup_instance_name='sourceossserver-nosuchdb')
    message = _message(play('restore_database', values).assert_failed())
    known = femu.backup_instance('empdb11')['name']
    assert 'sourceossserver-nosuchdb' in message and known in message and 'backup_instance_name' in message, message
    assert not _writes(_calls(femu)), _calls(femu)


def test_unknown_backup_instance_by_datasource(femu, play):
    values = femu.restore_vars('never_made', datasource_id=_datasource(femu).replace('empdb11', 'nosuchdb'))
    del values['backup_instance_name']
    message = _message(play('restore_database', values).assert_failed())
    assert 'nosuchdb' in message and 'datasource_id' in message, message
    assert not _writes(_calls(femu)), _calls(femu)


def test_unknown_recovery_point(femu, play):
    values = femu.restore_vars('never_made', recovery_point_id='0123456789abcdef0123456789abcdef')
    message = _message(play('restore_database', values).assert_failed())
    assert '0123456789abcdef0123456789abcdef' in message and 'pg_recovery_point_info' in message, message
    assert not _writes(_calls(femu)), _calls(femu)


def test_no_recovery_point_before_the_time(femu, play):
    values = femu.restore_vars('never_made', recovery_point_before='2001-01-01T00:00:00Z')
    message = _message(play('restore_database', values).assert_failed())
    assert '2001-01-01' in message and 'before' in message, message
    assert not _writes(_calls(femu)), _calls(femu)


def test_existing_target_database_is_never_overwritten(femu, play, unique_name):
    """The target database exists (with data of its own): the run stops with a message that says to choose another
    name; no restore is requested and the database is untouched."""
    db = unique_name('exists')
    femu.create_database(db)
    message = _message(play('restore_database', femu.restore_vars(db)).assert_failed())
    assert db in message and 'already exists' in message and 'Choose another target_database_name' in message, message
    assert femu.counters().get('restores_requested', 0) == 0

    # pg_restore alone refuses it before it sends anything (it reads whether the database exists).
    dummy, record = play.module('pg_restore', femu.module_target(db))
    assert record['status'] == 'failed' and 'already exists' in record['result']['msg']
    assert 'target_database_name' in record['result']['msg'], record['result']['msg']
    assert femu.counters().get('validations_requested', 0) == 0  # refused before anything is asked of the service
    assert femu.counters().get('restores_requested', 0) == 0


# ------------------------------------------------------------------------------------ identity and transport

def _closed_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_unreachable_cloud_environment(femu, play):
    url = 'https://127.0.0.1:%d' % _closed_port()
    result = play('restore_database', femu.restore_vars('never_made'),
                  env={'AZURE_CLOUD_ENVIRONMENT': url}).assert_failed()
    message = _message(result)
    assert url in message and 'cloud_environment' in message, message
    assert _calls(femu) == {}


def test_wrong_client_secret(femu, play):
    wrong = 'Wrong-Client-Secret-9f3a'
    femu.extra_secrets.add(wrong)
    result = play('restore_database', femu.restore_vars('never_made'), env={'AZURE_SECRET': wrong}).assert_failed()
    message = _message(result)
    assert 'AADSTS7000215' in message and 'AZURE_SECRET' in message, message
    assert not _arm(_calls(femu)), _calls(femu)


@pytest.mark.parametrize('bundle', ['unset', 'system'])
def test_untrusted_ca(femu, play, bundle):
    """cert_validation_mode left on (the default) and the emulator's CA not trusted: a TLS error that says how to
    trust the CA (REQUESTS_CA_BUNDLE), never to turn verification off."""
    env = {'REQUESTS_CA_BUNDLE': None if bundle == 'unset' else '/etc/ssl/certs/ca-certificates.crt'}
    result = play('restore_database', femu.restore_vars('never_made'), env=env).assert_failed()
    message = _message(result)
    assert 'REQUESTS_CA_BUNDLE' in message and 'certificate' in message.lower(), message
    assert 'cert_validation_mode: ignore' not in message and 'validate_certs' not in message, message
    assert _calls(femu) == {}

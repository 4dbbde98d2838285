# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keyvault_secret, restore_permissions and the keyvault_secret lookup through ansible-playbook, against a real
emulator: check mode (reports, writes nothing), real run (writes), re-run (changes nothing), then state=absent.

The emulator is started for this module in a fresh state directory and stopped afterwards (by its pid file).
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import textwrap
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SENTINEL = 'Sentinel-Pw-4f1d;9c2e'  # a ';' forces ADO.NET quoting
TIMEOUT = 600
VAULT = {'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG'}


def _tool(name):
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name)


@pytest.fixture(scope='module')
def emulator():
    dpemulator = _tool('dpemulator')
    if not dpemulator:
        pytest.skip('dpemulator is not installed (pip install -e tests/emulator)')
    # The PostgreSQL clusters run as the postgres user when root: the state dir must be traversable (not tmp_path).
    state = Path(tempfile.mkdtemp(prefix='dp-support-', dir='/tmp'))
    os.chmod(state, 0o755)
    try:
        subprocess.run([dpemulator, 'start', '--state', str(state)], check=True, timeout=TIMEOUT,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        env = json.loads((state / 'env.json').read_text())
        yield {key: str(value) for key, value in env.items()}
    finally:
        subprocess.run([dpemulator, 'stop', '--state', str(state)], timeout=TIMEOUT, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope='module')
def collections_path():
    """ANSIBLE_COLLECTIONS_PATH as given (make installs the tarball), else a symlink tree to this checkout."""
    if os.environ.get('ANSIBLE_COLLECTIONS_PATH'):
        yield os.environ['ANSIBLE_COLLECTIONS_PATH']
        return
    root = Path(tempfile.mkdtemp(prefix='dp-colls-'))
    (root / 'ansible_collections' / 'azure_backup').mkdir(parents=True)
    os.symlink(REPO, root / 'ansible_collections' / 'azure_backup' / 'dataprotection')
    yield str(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope='module')
def world(emulator):
    url, sub = emulator['DPEMULATOR_URL'], emulator['AZURE_SUBSCRIPTION_ID']
    rg = f'/subscriptions/{sub}/resourceGroups/targetrg'
    return {
        'url': url, 'sub': sub,
        'server_id': f'{rg}/providers/Microsoft.DBforPostgreSQL/servers/targetossserver',
        'kv_rbac_uri': f'{url}/keyvaults/targetosskv/',
        'kv_policy_uri': f'{url}/keyvaults/targetosskvpolicy/',
        'kv_policy_id': f'{rg}/providers/Microsoft.KeyVault/vaults/targetosskvpolicy',
        'kv_rbac_id': f'{rg}/providers/Microsoft.KeyVault/vaults/targetosskv',
        'storage_id': f'{rg}/providers/Microsoft.Storage/storageAccounts/targetossstorage',
        'container_url': f'{url}/blob/targetossstorage/restored-files',
    }


PLAYBOOK = textwrap.dedent('''\
    - name: Support modules against the emulator
      hosts: localhost
      gather_facts: false
      connection: local
      vars:
        connection:
          host: targetossserver.postgres.database.azure.com
          user: pgadmin@targetossserver
          password: "{{ sentinel }}"
      tasks:
        - name: Secret in the RBAC key vault, from a connection
          azure_backup.dataprotection.keyvault_secret:
            vault_uri: "{{ kv_rbac_uri }}"
            name: targetossserver-restore
            connection: "{{ connection }}"
            state: "{{ secret_state }}"
          register: kv_rbac

        - name: Secret in the access-policy key vault, by URI
          azure_backup.dataprotection.keyvault_secret:
            secret_uri: "{{ kv_policy_uri }}secrets/plain-value"
            value: "{{ sentinel }}"
            content_type: text/plain
            state: "{{ secret_state }}"
          register: kv_policy

        - name: Permissions for a restore as database (RBAC key vault found from the secret URI)
          azure_backup.dataprotection.restore_permissions:
            vault_name: TestBkpVault
            resource_group: testBkpVaultRG
            target_server_id: "{{ server_id }}/databases/emprestored21"
            secret_uri: "{{ kv_rbac_uri }}secrets/targetossserver-restore"
          register: perm_rbac

        - name: Permissions for a restore as database (access-policy key vault by id)
          azure_backup.dataprotection.restore_permissions:
            vault_name: TestBkpVault
            resource_group: testBkpVaultRG
            target_server_id: "{{ server_id }}"
            key_vault_id: "{{ kv_policy_id }}"
          register: perm_policy

        - name: Permissions for a restore as files (resource group scope)
          azure_backup.dataprotection.restore_permissions:
            vault_name: TestBkpVault
            resource_group: testBkpVaultRG
            target_container_url: "{{ container_url }}"
            scope: resource_group
          register: perm_files

        - name: Read the secrets back with the lookup
          ansible.builtin.set_fact:
            read_back: "{{ query('azure_backup.dataprotection.keyvault_secret', kv_rbac_uri ~ 'secrets/targetossserver-restore',
                                 kv_policy_uri ~ 'secrets/plain-value') }}"
          no_log: true
          when: not ansible_check_mode and secret_state == 'present'

        - name: Check what the lookup read
          ansible.builtin.assert:
            that:
              - read_back[0] is search('User Id=pgadmin@targetossserver;')
              - read_back[0] is search('Password="' ~ sentinel ~ '";')
              - read_back[1] == sentinel
            quiet: true
          no_log: true
          when: not ansible_check_mode and secret_state == 'present'

        - name: Save the results for the test
          ansible.builtin.copy:
            content: "{{ {'kv_rbac': kv_rbac, 'kv_policy': kv_policy, 'perm_rbac': perm_rbac, 'perm_policy': perm_policy,
                          'perm_files': perm_files} | to_json }}"
            dest: "{{ results_file }}"
            mode: "0600"
          check_mode: false
    ''')


@pytest.fixture(scope='module')
def run_play(emulator, world, collections_path, tmp_path_factory):
    workdir = tmp_path_factory.mktemp('support-play')
    playbook = workdir / 'play.yml'
    playbook.write_text(PLAYBOOK)
    env = dict(os.environ, **{k: v for k, v in emulator.items() if k.startswith(('AZURE_', 'REQUESTS_'))})
    env.update(ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_HOME=str(workdir / 'ansible-home'),
               ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='0', ANSIBLE_LOCALHOST_WARNING='0')
    counter = {'n': 0}

    def run(*args, secret_state='present'):
        counter['n'] += 1
        results = workdir / f'results-{counter["n"]}.json'
        extra = dict(world, sentinel=SENTINEL, secret_state=secret_state, results_file=str(results))
        command = [_tool('ansible-playbook'), str(playbook), '-e', json.dumps(extra), '-vvv', *args]
        proc = subprocess.run(command, env=env, cwd=workdir, timeout=TIMEOUT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.returncode == 0, proc.stdout[-6000:]
        # The password never shows, even at -vvv and with --diff (the assert on it is no_log too).
        assert SENTINEL not in proc.stdout and SENTINEL.replace(';', '') not in proc.stdout
        return json.loads(results.read_text()), proc.stdout

    return run


def control(emulator, path):
    """GET on the emulator's control API (counts and state, to prove what was or was not written)."""
    context = ssl.create_default_context(cafile=emulator['REQUESTS_CA_BUNDLE'])
    request = urllib.request.Request(emulator['DPEMULATOR_URL'] + '/_emulator/' + path,
                                     headers={'Authorization': 'Bearer ' + emulator['DPEMULATOR_CONTROL_TOKEN']})
    with urllib.request.urlopen(request, context=context, timeout=30) as response:  # nosec - local emulator
        return json.loads(response.read())


def roles_of(result, key='granted'):
    return sorted((item['role'], item['scope'].rsplit('/', 1)[-1]) for item in result[key])


def test_check_then_real_then_unchanged_then_absent(emulator, world, run_play):
    assignments_before = control(emulator, 'status')['role_assignments']

    # 1. check mode: everything would change, nothing is written
    checked, output = run_play('--check', '--diff')
    assert checked['kv_rbac']['changed'] and checked['kv_policy']['changed']
    assert checked['kv_rbac']['secret']['uri'] == world['kv_rbac_uri'] + 'secrets/targetossserver-restore'
    assert checked['kv_rbac']['secret']['version'] is None
    assert roles_of(checked['perm_rbac']) == [('Key Vault Secrets User', 'targetosskv'), ('Reader', 'targetossserver')]
    assert [g['kind'] for g in checked['perm_policy']['granted']] == ['role_assignment', 'access_policy']
    assert roles_of(checked['perm_files']) == [('Storage Blob Data Contributor', 'targetrg')]
    assert all(g['assignment_id'] is None for g in checked['perm_rbac']['granted'])
    assert '<hidden' in output  # the secret diff shows a marker, not the value
    assert control(emulator, 'status')['role_assignments'] == assignments_before

    # 2. real run: the secrets are written and read back by the lookup, the permissions granted
    real, _ = run_play()
    assert real['kv_rbac']['changed'] and real['kv_rbac']['value_changed'] and real['kv_rbac']['secret']['version']
    assert real['kv_policy']['changed'] and real['kv_policy']['secret']['content_type'] == 'text/plain'
    assert roles_of(real['perm_rbac']) == roles_of(checked['perm_rbac'])
    assert all(g['assignment_id'] for g in real['perm_rbac']['granted'])
    # Reader on the server was granted by the previous task: the policy run only adds the access policy
    assert [g['kind'] for g in real['perm_policy']['granted']] == ['access_policy']
    assert [p['role'] for p in real['perm_policy']['already_present']] == ['Reader']
    assert roles_of(real['perm_files']) == [('Storage Blob Data Contributor', 'targetrg')]
    assert control(emulator, 'status')['role_assignments'] == assignments_before + 3
    for result in real.values():
        assert result['changed'] is True

    # 3. re-run: nothing changes
    again, _ = run_play()
    for name, result in again.items():
        assert result['changed'] is False, name
    assert again['kv_rbac']['secret']['version'] == real['kv_rbac']['secret']['version']
    assert len(again['perm_rbac']['already_present']) == 2 and again['perm_rbac']['granted'] == []
    assert again['perm_files']['already_present'][0]['scope'].endswith('/resourceGroups/targetrg')

    # 4. state=absent deletes the secrets (check mode first), then changes nothing
    check_absent, _ = run_play('--check', secret_state='absent')
    assert check_absent['kv_rbac']['changed'] and check_absent['kv_policy']['changed']
    absent, _ = run_play(secret_state='absent')
    assert absent['kv_rbac']['changed'] and absent['kv_policy']['changed'] and absent['kv_rbac']['secret'] == {}
    absent_again, _ = run_play(secret_state='absent')
    assert not absent_again['kv_rbac']['changed'] and not absent_again['kv_policy']['changed']

# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keyvault_secret, restore_permissions and the keyvault_secret lookup through ansible-playbook, against a real
emulator with the demo world (the vault identity has no restore permission, no restore secret exists): check mode
(reports, writes nothing), real run (writes), re-run (changes nothing), then state=absent the same way.

Uses the shared fixtures of conftest.py (emulator_factory, run_playbook).
"""

from __future__ import annotations

import pytest

SENTINEL = 'Sentinel-Pw-4f1d;9c2e'  # a ';' forces ADO.NET quoting
PLAYBOOK = '''\
- name: Support modules against the emulator
  hosts: localhost
  gather_facts: false
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

    - name: Secret in the access-policy key vault, by URI
      azure_backup.dataprotection.keyvault_secret:
        secret_uri: "{{ kv_policy_uri }}secrets/plain-value"
        value: "{{ sentinel }}"
        content_type: text/plain
        state: "{{ secret_state }}"

    - name: Permissions for a restore as database (RBAC key vault found from the secret URI)
      azure_backup.dataprotection.restore_permissions:
        vault_name: TestBkpVault
        resource_group: testBkpVaultRG
        target_server_id: "{{ server_id }}/databases/emprestored21"
        secret_uri: "{{ kv_rbac_uri }}secrets/targetossserver-restore"
      # it reads the secret first: granting access to a deleted one is an error (the check mode run only warns)
      when: secret_state == 'present'

    - name: Permissions for a restore as database (access-policy key vault by id)
      azure_backup.dataprotection.restore_permissions:
        vault_name: TestBkpVault
        resource_group: testBkpVaultRG
        target_server_id: "{{ server_id }}"
        key_vault_id: "{{ kv_policy_id }}"

    - name: Permissions for a restore as files (resource group scope)
      azure_backup.dataprotection.restore_permissions:
        vault_name: TestBkpVault
        resource_group: testBkpVaultRG
        target_container_url: "{{ container_url }}"
        scope: resource_group

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
'''
NAMES = {
    'kv_rbac': 'Secret in the RBAC key vault, from a connection',
    'kv_policy': 'Secret in the access-policy key vault, by URI',
    'perm_rbac': 'Permissions for a restore as database (RBAC key vault found from the secret URI)',
    'perm_policy': 'Permissions for a restore as database (access-policy key vault by id)',
    'perm_files': 'Permissions for a restore as files (resource group scope)',
}


@pytest.fixture(scope='module')
def demo(emulator_session_factory):
    """A fresh emulator of its own: the demo world, which grants the vault identity nothing for restores."""
    return emulator_session_factory('demo')


@pytest.fixture(scope='module')
def play(demo, run_playbook):
    rg = f'/subscriptions/{demo.sub}/resourceGroups/targetrg'
    extravars = {
        'sentinel': SENTINEL,
        'server_id': demo.server_id('targetossserver'),
        'kv_rbac_uri': demo.kv_uri('targetosskv'),
        'kv_policy_uri': demo.kv_uri('targetosskvpolicy'),
        'kv_policy_id': f'{rg}/providers/Microsoft.KeyVault/vaults/targetosskvpolicy',
        'container_url': demo.container_url('targetossstorage', 'restored-files'),
    }
    secrets = {SENTINEL, SENTINEL.replace(';', '')} | demo.secret_values()

    def run(check=False, secret_state='present', diff=False):
        result = run_playbook(PLAYBOOK, extravars=dict(extravars, secret_state=secret_state), check=check, diff=diff,
                              verbosity=3, emulator=demo).assert_ok()
        for value in secrets:  # at -vvv, with --diff, the password and the emulator's secrets never show
            assert value not in result.output, 'a secret value shows in the output'
        return {key: result.task(name)['result'] for key, name in NAMES.items()}, result

    return run


def roles_of(result, key='granted'):
    return sorted((item['role'], item['scope'].rstrip('/').rsplit('/', 1)[-1]) for item in result[key])


def assignment_count(emulator):
    return emulator.status()['role_assignments']


def test_check_then_real_then_unchanged_then_absent(demo, play):
    before = assignment_count(demo)

    # 1. check mode: everything would change, nothing is written
    checked, run = play(check=True, diff=True)
    assert checked['kv_rbac']['changed'] and checked['kv_policy']['changed']
    assert checked['kv_rbac']['secret']['uri'] == demo.kv_uri('targetosskv') + 'secrets/targetossserver-restore'
    assert checked['kv_rbac']['secret']['version'] is None
    assert roles_of(checked['perm_rbac']) == [('Key Vault Secrets User', 'targetosskv'), ('Reader', 'targetossserver')]
    assert [g['kind'] for g in checked['perm_policy']['granted']] == ['role_assignment', 'access_policy']
    assert roles_of(checked['perm_files']) == [('Storage Blob Data Contributor', 'targetrg')]
    assert all(g['assignment_id'] is None for g in checked['perm_rbac']['granted'])
    assert '<hidden' in run.output  # the secret's diff shows a marker, never the value
    assert assignment_count(demo) == before

    # 2. real run: the secrets are written (and read back by the lookup), the permissions granted
    real, _run = play()
    assert real['kv_rbac']['changed'] and real['kv_rbac']['value_changed'] and real['kv_rbac']['secret']['version']
    assert real['kv_policy']['changed'] and real['kv_policy']['secret']['content_type'] == 'text/plain'
    assert roles_of(real['perm_rbac']) == roles_of(checked['perm_rbac'])
    assert all(g['assignment_id'] for g in real['perm_rbac']['granted'])
    # Reader on the server came with the previous task: the access-policy task only adds the policy
    assert [g['kind'] for g in real['perm_policy']['granted']] == ['access_policy']
    assert [p['role'] for p in real['perm_policy']['already_present']] == ['Reader']
    assert roles_of(real['perm_files']) == [('Storage Blob Data Contributor', 'targetrg')]
    assert assignment_count(demo) == before + 3
    assert all(result['changed'] for result in real.values())

    # 3. re-run: nothing changes
    again, _run = play()
    assert [key for key, result in again.items() if result['changed']] == []
    assert again['kv_rbac']['secret']['version'] == real['kv_rbac']['secret']['version']
    assert len(again['perm_rbac']['already_present']) == 2 and again['perm_rbac']['granted'] == []
    assert again['perm_files']['already_present'][0]['scope'].endswith('/resourceGroups/targetrg')
    assert assignment_count(demo) == before + 3

    # 4. state=absent: check mode first, then real, then unchanged
    check_absent, _run = play(check=True, secret_state='absent')
    assert check_absent['kv_rbac']['changed'] and check_absent['kv_policy']['changed']
    absent, _run = play(secret_state='absent')
    assert absent['kv_rbac']['changed'] and absent['kv_policy']['changed'] and absent['kv_rbac']['secret'] == {}
    absent_again, _run = play(secret_state='absent')
    assert not absent_again['kv_rbac']['changed'] and not absent_again['kv_policy']['changed']

# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
name: backup_instances
short_description: Backup instances of Azure Backup vaults (PostgreSQL) as inventory hosts
version_added: 1.2.0
description:
  - Every backup instance of the given Backup vaults, or of every vault in the given subscriptions or resource groups,
    becomes a host, with host vars that describe the vault, the backup instance, the protected datasource and its
    latest recovery point, and groups by vault, datasource type, server, region and protection state.
  - Reads Azure Resource Manager (Microsoft.DataProtection) with the same sign-in as the collection's modules, so an
    AWX/AAP "Microsoft Azure Resource Manager" credential works unchanged. Every list follows C(nextLink); a throttled
    (HTTP 429) or failing (5xx) read is retried after its C(Retry-After), as the modules do.
  - The inventory file name must end with C(backup_instances.yml) or C(backup_instances.yaml).
  - "Host vars (all prefixed C(dp_)): C(dp_vault_name), C(dp_vault_resource_group), C(dp_vault_id),
    C(dp_vault_location), C(dp_subscription_id), C(dp_backup_instance_name), C(dp_backup_instance_id),
    C(dp_friendly_name), C(dp_datasource_type) (the ARM type: C(Microsoft.DBforPostgreSQL/servers/databases) or
    C(Microsoft.DBforPostgreSQL/flexibleServers)), C(dp_datasource_kind) (V(single) or V(flexible)),
    C(dp_datasource_id), C(dp_datasource_location), C(dp_server_name), C(dp_server_id), C(dp_database_name) (empty for
    a flexible server, whose backup holds all its databases), C(dp_policy_name), C(dp_protection_state)
    (C(currentProtectionState)), C(dp_protection_status), C(dp_recovery_point_count), C(dp_latest_recovery_point_id),
    C(dp_latest_recovery_point_time) (ISO 8601, empty when there is none) and C(dp_latest_recovery_point_age_hours)
    (at the time the inventory was read)."
  - "Groups (with O(default_groups)): C(vault_<vault>), C(datasource_single) / C(datasource_flexible),
    C(server_<server>), C(region_<location>), C(protection_<state>); names are lower case with every character that
    is not a letter, digit or underscore replaced by C(_). O(keyed_groups), O(groups) and O(compose) add more."
author:
  - Azure Backup Data Protection collection contributors (@azure-backup)
requirements:
  - requests
  - azure-identity
options:
  plugin:
    description: Marks this file as an inventory of this plugin.
    type: str
    required: true
    choices: [azure_backup.dataprotection.backup_instances]
  vaults:
    description:
      - Backup vaults to read, each the ARM id of a vault, or a mapping with C(name), C(resource_group) and optionally
        C(subscription_id) (default O(subscription_id)).
      - When neither this nor O(subscriptions) nor O(resource_groups) is set, every vault of O(subscription_id).
    type: list
    elements: raw
    default: []
  subscriptions:
    description: Read every Backup vault of these subscriptions (ids).
    type: list
    elements: str
    default: []
  resource_groups:
    description:
      - Read every Backup vault of these resource groups, each a name (in O(subscription_id)) or
        C(<subscription id>/<resource group>).
    type: list
    elements: str
    default: []
  datasource_types:
    description: Keep only backup instances of these kinds (V(single) server databases, V(flexible) servers).
    type: list
    elements: str
    choices: [single, flexible]
    default: [single, flexible]
  recovery_points:
    description:
      - Read each backup instance's recovery points for the C(dp_latest_recovery_point_*) host vars (one paged list per
        backup instance). V(false) leaves them empty, for a quicker inventory of very large estates.
    type: bool
    default: true
  default_groups:
    description: Add the groups listed in the description (vault, datasource type, server, region, protection state).
    type: bool
    default: true
  connection_local:
    description:
      - Set C(ansible_connection=local) on every host (the hosts are backup instances, not machines; every task of
        the collection runs on the controller) and C(ansible_python_interpreter) to the controller's Python.
    type: bool
    default: true
  api_version:
    description: api-version of Microsoft.DataProtection.
    type: str
    default: '2024-04-01'
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
  - azure_backup.dataprotection.plugin_auth
notes:
  - The identity needs C(Microsoft.DataProtection/backupVaults/read) and C(.../backupInstances/read) (the C(Reader)
    role, or C(Backup Reader), on the vaults).
  - With O(cache=true) the hosts are read from Ansible's inventory cache plugin (C(cache_plugin), C(cache_timeout),
    C(cache_connection)) until it expires; C(ansible-inventory --flush-cache) reads Azure again.
  - Backup instance names are unique in a vault; a name found in two vaults gets the vault name as prefix
    (C(<vault>__<backup instance>)).
'''

EXAMPLES = r'''
# drill.backup_instances.yml: every backup instance of two vaults
plugin: azure_backup.dataprotection.backup_instances
vaults:
  - {name: TestBkpVault, resource_group: testBkpVaultRG}
  - /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/dr-rg/providers/Microsoft.DataProtection/backupVaults/drVault
keyed_groups:
  - key: dp_policy_name
    prefix: policy
groups:
  stale: dp_latest_recovery_point_age_hours | float > 26
compose:
  drill_database: "'drill_' ~ (dp_database_name or dp_server_name)"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/azure_backup_inventory
cache_timeout: 3600

# every vault of the resource groups, flexible servers only
# plugin: azure_backup.dataprotection.backup_instances
# resource_groups: [backup-prod-rg, 00000000-0000-0000-0000-000000000000/backup-dr-rg]
# datasource_types: [flexible]
'''

import re
import sys
from datetime import datetime, timezone

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.display import Display

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import DataProtectionError
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._ids import parse_resource_id, vault_id
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._recovery_points import (
    iter_filtered, point_time, select_recovery_point, RecoveryPointNotFound,
)
from ansible_collections.azure_backup.dataprotection.plugins.plugin_utils._lookup_auth import build_client

display = Display()

FLEX_TYPE = 'Microsoft.DBforPostgreSQL/flexibleServers'
DB_TYPE = 'Microsoft.DBforPostgreSQL/servers/databases'
_KIND = {FLEX_TYPE.lower(): 'flexible', DB_TYPE.lower(): 'single'}
_UNSAFE = re.compile(r'[^a-z0-9_]')


def group_name(prefix, value):
    return _UNSAFE.sub('_', f'{prefix}_{value}'.lower())


def _vault_paths(options, default_subscription):
    """The ARM paths of the vaults to read, and of the scopes whose vaults are listed."""
    vaults, scopes = [], []
    for entry in options['vaults'] or []:
        if isinstance(entry, str):
            parsed = parse_resource_id(entry, 'Microsoft.DataProtection/backupVaults', option='vaults')
            vaults.append(vault_id(parsed['subscription'], parsed['resource_group'], parsed['name']))
        elif isinstance(entry, dict) and entry.get('name') and entry.get('resource_group'):
            sub = entry.get('subscription_id') or default_subscription
            if not sub:
                raise AnsibleParserError(f"vaults: {entry['name']} needs subscription_id (or AZURE_SUBSCRIPTION_ID)")
            vaults.append(vault_id(sub, entry['resource_group'], entry['name']))
        else:
            raise AnsibleParserError(f'vaults: {entry!r} is neither a vault ARM id nor a mapping with name and '
                                     'resource_group')
    for sub in options['subscriptions'] or []:
        scopes.append(f'/subscriptions/{sub}')
    for rg in options['resource_groups'] or []:
        sub, _sep, name = rg.rpartition('/')
        sub = sub or default_subscription
        if not sub:
            raise AnsibleParserError(f'resource_groups: {rg} needs a subscription (<subscription id>/<group>, or '
                                     'AZURE_SUBSCRIPTION_ID)')
        scopes.append(f'/subscriptions/{sub}/resourceGroups/{name}')
    if not vaults and not scopes:
        if not default_subscription:
            raise AnsibleParserError('Give vaults, subscriptions or resource_groups (or set AZURE_SUBSCRIPTION_ID to '
                                     'read every vault of that subscription).')
        scopes.append(f'/subscriptions/{default_subscription}')
    return vaults, scopes


def describe_instance(vault, raw, points, now):
    """The host vars of one backup instance (raw ARM shape) of a vault (raw ARM shape)."""
    props = raw.get('properties') or {}
    source = props.get('dataSourceInfo') or {}
    source_set = props.get('dataSourceSetInfo') or {}
    ds_type = source.get('datasourceType') or source.get('resourceType') or ''
    kind = _KIND.get(ds_type.lower(), 'other')
    ds_id = source.get('resourceID') or ''
    if kind == 'single':
        server_id = source_set.get('resourceID') or ds_id.rsplit('/databases/', 1)[0]
        database = source.get('resourceName') or ds_id.rsplit('/', 1)[-1]
    else:
        server_id, database = ds_id, ''
    vparsed = parse_resource_id(vault['id'], option='vault id')
    latest = points or {}
    when = point_time(latest) if latest else None
    policy_id = (props.get('policyInfo') or {}).get('policyId') or ''
    return {
        'dp_vault_name': vault['name'],
        'dp_vault_resource_group': vparsed['resource_group'],
        'dp_vault_id': vault['id'],
        'dp_vault_location': vault.get('location') or '',
        'dp_subscription_id': vparsed['subscription'],
        'dp_backup_instance_name': raw.get('name'),
        'dp_backup_instance_id': raw.get('id'),
        'dp_friendly_name': props.get('friendlyName') or '',
        'dp_datasource_type': ds_type,
        'dp_datasource_kind': kind,
        'dp_datasource_id': ds_id,
        'dp_datasource_location': source.get('resourceLocation') or vault.get('location') or '',
        'dp_server_name': server_id.rstrip('/').rsplit('/', 1)[-1] if server_id else '',
        'dp_server_id': server_id,
        'dp_database_name': database,
        'dp_policy_name': policy_id.rstrip('/').rsplit('/', 1)[-1] if policy_id else '',
        'dp_protection_state': props.get('currentProtectionState') or '',
        'dp_protection_status': (props.get('protectionStatus') or {}).get('status') or '',
        'dp_recovery_point_count': latest.get('count', 0) if latest else 0,
        'dp_latest_recovery_point_id': latest.get('recovery_point_id') or '',
        'dp_latest_recovery_point_time': latest.get('recovery_point_time') or '',
        'dp_latest_recovery_point_age_hours': round((now - when).total_seconds() / 3600.0, 2) if when else None,
    }


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = 'azure_backup.dataprotection.backup_instances'

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(('backup_instances.yml', 'backup_instances.yaml'))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option('cache') and cache
        update_cache = self.get_option('cache') and not cache
        hosts = None
        if use_cache:
            try:
                hosts = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if hosts is None:
            hosts = self._read_azure()
        if update_cache:
            self._cache[cache_key] = hosts
        self._populate(hosts)

    # ------------------------------------------------------------ reading Azure

    def _read_azure(self):
        try:
            client, dummy = build_client(self, warn=display.warning)
            client.api_version = self.get_option('api_version')
            wanted = {k: self.get_option(k) for k in ('vaults', 'subscriptions', 'resource_groups')}
            vaults, scopes = _vault_paths(wanted, client.subscription_id)
            found = [self._get(client, path) for path in vaults]
            for scope in scopes:
                found.extend(client.iter_pages(scope + '/providers/Microsoft.DataProtection/backupVaults'))
            kinds = set(self.get_option('datasource_types'))
            now = datetime.now(timezone.utc)
            hosts, seen = [], set()
            for vault in found:
                if vault['id'].lower() in seen:
                    continue
                seen.add(vault['id'].lower())
                for raw in client.iter_pages(vault['id'] + '/backupInstances'):
                    latest = self._latest_point(client, raw) if self.get_option('recovery_points') else None
                    host = describe_instance(vault, raw, latest, now)
                    if host['dp_datasource_kind'] in kinds:
                        hosts.append(host)
            return hosts
        except DataProtectionError as err:
            raise AnsibleParserError(f'backup_instances inventory: {err}') from None
        except (AnsibleError, ValueError) as err:
            raise AnsibleParserError(f'backup_instances inventory: {err}') from None

    @staticmethod
    def _get(client, path):
        return client.json_or_raise(client.get(path), f'Read the Backup vault {path}')

    @staticmethod
    def _latest_point(client, raw):
        count = 0

        def counted(points):
            nonlocal count
            for point in points:
                count += 1
                yield point
        try:
            point = select_recovery_point(counted(iter_filtered(client.iter_pages(raw['id'] + '/recoveryPoints'))),
                                          'latest')
        except RecoveryPointNotFound:
            return {'count': count}
        return dict(point, count=count)

    # ------------------------------------------------------------ the inventory

    def _populate(self, hosts):
        names = {}
        for host in hosts:
            names.setdefault(host['dp_backup_instance_name'], []).append(host)
        strict = self.get_option('strict')
        for host in hosts:
            name = host['dp_backup_instance_name']
            if len(names[name]) > 1:
                name = f"{host['dp_vault_name']}__{name}"
            self.inventory.add_host(name)
            for key, value in host.items():
                self.inventory.set_variable(name, key, value)
            if self.get_option('connection_local'):
                self.inventory.set_variable(name, 'ansible_connection', 'local')
                self.inventory.set_variable(name, 'ansible_python_interpreter', sys.executable)
            if self.get_option('default_groups'):
                for prefix, value in (('vault', host['dp_vault_name']), ('datasource', host['dp_datasource_kind']),
                                      ('server', host['dp_server_name']), ('region', host['dp_datasource_location']),
                                      ('protection', host['dp_protection_state'])):
                    if value:
                        group = self.inventory.add_group(group_name(prefix, value))
                        self.inventory.add_child(group, name)
            self._set_composite_vars(self.get_option('compose'), host, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option('groups'), host, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option('keyed_groups'), host, name, strict=strict)

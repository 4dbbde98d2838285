# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""Parse and build ARM ids, Key Vault secret URIs and blob container URLs (pure: no I/O)."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

_GUID = re.compile(r'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')
_SECRET_NAME = re.compile(r'^[0-9A-Za-z-]{1,127}$')
_CONTAINER_NAME = re.compile(r'^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$')
_DP = 'Microsoft.DataProtection'
BACKUP_INSTANCE_TYPE = _DP + '/backupVaults/backupInstances'
VAULT_TYPE = _DP + '/backupVaults'
JOB_TYPE = _DP + '/backupVaults/backupJobs'

# Placeholders used when an error message shows what a valid id of a given type looks like.
_PLACEHOLDERS = {
    'backupvaults': 'vault', 'backupinstances': 'name', 'backupjobs': 'job-guid', 'servers': 'server',
    'databases': 'database', 'flexibleservers': 'server', 'storageaccounts': 'account', 'vaults': 'vault',
    'blobservices': 'default', 'containers': 'container',
}


def is_guid(value):
    return isinstance(value, str) and bool(_GUID.match(value))


def resource_id_template(resource_type):
    """'/subscriptions/<guid>/resourceGroups/<rg>/providers/<ns>/<type>/<name>...' for a full resource type."""
    namespace, *types = resource_type.split('/')
    path = ''.join(f'/{t}/<{_PLACEHOLDERS.get(t.lower(), t + "-name")}>' for t in types)
    return f'/subscriptions/<guid>/resourceGroups/<rg>/providers/{namespace}{path}'


def parse_resource_id(arm_id, expected_type=None, option='resource id'):
    """Split an ARM id into its parts; ValueError says what a valid id looks like.

    Returns subscription, resource_group (None at subscription scope), provider, types, names, name, type
    (the full type, for example 'Microsoft.DataProtection/backupVaults/backupInstances') and id.
    `expected_type`, when given, must match the id's type (case-insensitively).
    """
    parts = _split_id(arm_id)
    if parts is None or (expected_type and parts['type'].lower() != expected_type.lower()):
        expected = resource_id_template(expected_type) if expected_type else (
            '/subscriptions/<guid>/resourceGroups/<rg>/providers/<namespace>/<type>/<name>')
        raise ValueError(f"{option} '{arm_id}' is not a valid ARM id: expected {expected}")
    return parts


def _split_id(arm_id):
    if not isinstance(arm_id, str):
        return None
    segments = arm_id.strip().strip('/').split('/')
    if len(segments) < 2 or segments[0].lower() != 'subscriptions' or not is_guid(segments[1]):
        return None
    rest, resource_group = segments[2:], None
    if len(rest) >= 2 and rest[0].lower() == 'resourcegroups':
        resource_group, rest = rest[1], rest[2:]
    if not rest:  # a subscription or a resource group: scopes of role assignments
        return _scope_id(segments, resource_group)
    if len(rest) < 4 or rest[0].lower() != 'providers' or len(rest) % 2 != 0 or not all(rest):
        return None
    provider, pairs = rest[1], rest[2:]
    types, names = pairs[0::2], pairs[1::2]
    return {
        'id': '/' + '/'.join(segments), 'subscription': segments[1], 'resource_group': resource_group,
        'provider': provider, 'types': types, 'names': names, 'name': names[-1],
        'type': '/'.join([provider] + types),
    }


def _scope_id(segments, resource_group):
    kind = 'resourceGroups' if resource_group else 'subscriptions'
    return {
        'id': '/' + '/'.join(segments), 'subscription': segments[1], 'resource_group': resource_group,
        'provider': 'Microsoft.Resources', 'types': [kind], 'names': [segments[-1]], 'name': segments[-1],
        'type': 'Microsoft.Resources/' + kind,
    }


def _segment(value, option):
    if not value or '/' in str(value):
        raise ValueError(f"{option} '{value}' is not valid: give a plain name without '/'")
    return quote(str(value), safe="-_.()~@!$&'*+,;=:")


def vault_id(subscription, resource_group, vault):
    return (f'/subscriptions/{_segment(subscription, "subscription_id")}'
            f'/resourceGroups/{_segment(resource_group, "resource_group")}'
            f'/providers/{_DP}/backupVaults/{_segment(vault, "vault_name")}')


def backup_instance_id(subscription, resource_group, vault, backup_instance):
    return (vault_id(subscription, resource_group, vault)
            + f'/backupInstances/{_segment(backup_instance, "backup_instance_name")}')


def job_guid(value):
    """The job GUID from a GUID or a job ARM id ('.../backupVaults/<v>/backupJobs/<guid>')."""
    candidate = str(value or '').strip().rstrip('/').rsplit('/', 1)[-1]
    if not is_guid(candidate):
        raise ValueError(f"job_id '{value}' is neither a job GUID nor a job ARM id: expected "
                         f"<guid> or {resource_id_template(JOB_TYPE)}")
    return candidate


def job_id(subscription, resource_group, vault, job):
    """The ARM id of a backup vault job (`job` = GUID or ARM id)."""
    return vault_id(subscription, resource_group, vault) + '/backupJobs/' + job_guid(job)


def _https_parts(url, option, example):
    parts = urlsplit(str(url or '').strip())
    if parts.scheme.lower() != 'https' or not parts.netloc:
        raise ValueError(f"{option} '{url}' is not an https URL: expected {example}")
    return parts


def parse_secret_uri(uri):
    """(vault_base_url, name, version or None) from a Key Vault secret id.

    Any https URL whose path ends in /secrets/<name>[/<version>]: real vaults
    (https://kv.vault.azure.net/secrets/x) and path-style ones (https://host:port/keyvaults/kv/secrets/x).
    """
    example = 'https://<vault>.vault.azure.net/secrets/<name>[/<version>]'
    parts = _https_parts(uri, 'secret_uri', example)
    head, sep, tail = parts.path.rstrip('/').rpartition('/secrets/')
    pieces = tail.split('/') if sep else []
    if not pieces or len(pieces) > 2 or not all(_SECRET_NAME.match(p) for p in pieces):
        raise ValueError(f"secret_uri '{uri}' is not a Key Vault secret URI: expected {example} "
                         "(names use letters, digits and '-')")
    base = f'{parts.scheme.lower()}://{parts.netloc}{head}'
    return base, pieces[0], pieces[1] if len(pieces) == 2 else None


def parse_container_url(url):
    """(account_base_url, container) from a blob container URL.

    Real accounts: https://<account>.blob.core.windows.net/<container>; path style (emulator):
    https://host:port/blob/<account>/<container>. The container is the last path segment.
    """
    example = 'https://<account>.blob.core.windows.net/<container>'
    parts = _https_parts(url, 'target_container_url', example)
    head, _sep, container = parts.path.rstrip('/').rpartition('/')
    if not _CONTAINER_NAME.match(container or ''):
        raise ValueError(f"target_container_url '{url}' does not end with a valid container name: expected "
                         f"{example} (3-63 lower-case letters, digits and '-')")
    return f'{parts.scheme.lower()}://{parts.netloc}{head}', container

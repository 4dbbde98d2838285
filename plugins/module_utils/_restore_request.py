# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: this file is private to the azure_backup.dataprotection collection.
# Its functions may change without notice; do not import it from other collections.
"""PostgreSQL restore request builder (pure: no HTTP).

The bodies follow the Microsoft.DataProtection 2024-04-01 spec to the letter (reference
dataprotection-api.md §2), not the REST how-to article (§8): ``datasourceInfo`` with a lower-case
``s``, ``resourceID`` with a capital ``ID``, ``AzureBackupRestoreWithRehydrationRequest`` with camelCase
``rehydrationPriority``/``rehydrationRetentionDuration`` (``P<n>D``), a validate body that is only
``{"restoreRequestObject": ...}``, and never a secret value (only the Key Vault secret URI).
"""

from __future__ import annotations

import re
from collections import namedtuple

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._ids import (
    parse_container_url,
    parse_resource_id,
    parse_secret_uri,
    resource_id_template,
)

DATABASE_DATASOURCE_TYPE = 'Microsoft.DBforPostgreSQL/servers/databases'
SERVER_RESOURCE_TYPE = 'Microsoft.DBforPostgreSQL/servers'
FLEXIBLE_DATASOURCE_TYPE = 'Microsoft.DBforPostgreSQL/flexibleServers'
SUPPORTED_DATASOURCE_TYPES = (DATABASE_DATASOURCE_TYPE, FLEXIBLE_DATASOURCE_TYPE)
CONTAINER_TYPE = 'Microsoft.Storage/storageAccounts/blobServices/containers'
USER_ASSIGNED_IDENTITY_TYPE = 'Microsoft.ManagedIdentity/userAssignedIdentities'

RECOVERY_POINT_BASED = 'AzureBackupRecoveryPointBasedRestoreRequest'
WITH_REHYDRATION = 'AzureBackupRestoreWithRehydrationRequest'

VAULT_STORE = 'VaultStore'
ARCHIVE_STORE = 'ArchiveStore'
SOURCE_DATASTORE_CHOICES = ('auto', VAULT_STORE, ARCHIVE_STORE)

REHYDRATION_PRIORITIES = ('Standard', 'High')
MIN_REHYDRATION_DAYS = 10
MAX_REHYDRATION_DAYS = 30
DEFAULT_REHYDRATION_DAYS = 15

FLEXIBLE_DATABASE_TARGET_MSG = ('Flexible servers can only be restored as files: give target_container_url and '
                                'target_file_prefix (then rebuild the database from the files with pg_restore).')

DatabaseTarget = namedtuple('DatabaseTarget', ['server_id', 'database_name', 'secret_uri'])
FilesTarget = namedtuple('FilesTarget', ['container_url', 'file_prefix', 'target_resource_id'])
FilesTarget.__new__.__defaults__ = (None,)
Rehydration = namedtuple('Rehydration', ['priority', 'retention_days'])
Rehydration.__new__.__defaults__ = ('Standard', DEFAULT_REHYDRATION_DAYS)

# Azure Database for PostgreSQL database names: 1-63 characters, no path or URL separators.
_DB_NAME_RE = re.compile(r'^[^/\\?#%\s][^/\\?#%]{0,62}$')
_RP_ID_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*$')


def _type_eq(left, right):
    return (left or '').lower() == (right or '').lower()


def is_flexible(datasource_type):
    return _type_eq(datasource_type, FLEXIBLE_DATASOURCE_TYPE)


def is_single_server_database(datasource_type):
    return _type_eq(datasource_type, DATABASE_DATASOURCE_TYPE)


def check_datasource_type(datasource_type, backup_instance_name=None):
    """Refuse a backup instance that does not protect PostgreSQL (single server database or flexible server)."""
    if is_flexible(datasource_type) or is_single_server_database(datasource_type):
        return
    raise ValueError(
        "Backup instance%s protects datasource type '%s'; this collection restores only %s." % (
            " '%s'" % backup_instance_name if backup_instance_name else '', datasource_type,
            ' and '.join(SUPPORTED_DATASOURCE_TYPES)))


def rehydration_duration(days):
    """ISO 8601 duration for a rehydration retention in days (10..30, as the service and the az CLI allow)."""
    if isinstance(days, bool) or not isinstance(days, int):
        raise ValueError('rehydration_retention_days must be a whole number of days, not %r.' % (days,))
    if not MIN_REHYDRATION_DAYS <= days <= MAX_REHYDRATION_DAYS:
        raise ValueError('rehydration_retention_days must be between %d and %d days, not %d.' % (
            MIN_REHYDRATION_DAYS, MAX_REHYDRATION_DAYS, days))
    return 'P%dD' % days


def check_rehydration(rehydration):
    """Validate a Rehydration tuple early (priority and retention range)."""
    if rehydration is None:
        return
    if rehydration.priority not in REHYDRATION_PRIORITIES:
        raise ValueError('rehydration_priority must be one of %s, not %r.' % (
            ', '.join(REHYDRATION_PRIORITIES), rehydration.priority))
    rehydration_duration(rehydration.retention_days)


def parse_server_id(server_id, option='target_server_id'):
    """Check a PostgreSQL server ARM id; returns (normalised id, server type, server name).

    The server type is 'servers' (single server) or 'flexibleServers'.
    """
    try:
        parts = parse_resource_id(server_id, option=option)
    except ValueError:
        parts = None
    if parts is None or parts['type'].lower() not in (SERVER_RESOURCE_TYPE.lower(), FLEXIBLE_DATASOURCE_TYPE.lower()):
        raise ValueError(
            "%s '%s' is not the ARM id of a PostgreSQL server: expected %s (or .../flexibleServers/<server>)." % (
                option, server_id, resource_id_template(SERVER_RESOURCE_TYPE)))
    server_type = 'flexibleServers' if parts['type'].lower() == FLEXIBLE_DATASOURCE_TYPE.lower() else 'servers'
    return parts['id'], server_type, parts['name']


def parse_datasource_id(datasource_id):
    """Check the ARM id of a protected PostgreSQL datasource; returns (normalised id, datasource type).

    A single server database (.../servers/<s>/databases/<d>) or a flexible server (.../flexibleServers/<s>).
    """
    try:
        parts = parse_resource_id(datasource_id, option='datasource_id')
    except ValueError:
        parts = None
    if parts is None or parts['type'].lower() not in [t.lower() for t in SUPPORTED_DATASOURCE_TYPES]:
        raise ValueError(
            "datasource_id '%s' is not the ARM id of a protected PostgreSQL datasource: expected a single server "
            "database %s or a flexible server %s." % (
                datasource_id, resource_id_template(DATABASE_DATASOURCE_TYPE),
                resource_id_template(FLEXIBLE_DATASOURCE_TYPE)))
    canonical = DATABASE_DATASOURCE_TYPE if parts['type'].lower() == DATABASE_DATASOURCE_TYPE.lower() else FLEXIBLE_DATASOURCE_TYPE
    return parts['id'], canonical


def check_resource_id(value, expected_type, option):
    """Check an ARM id of a given type (ValueError with the expected shape); returns the normalised id."""
    return parse_resource_id(value, expected_type=expected_type, option=option)['id']


def check_secret_uri(uri):
    """Check a Key Vault secret URI (ValueError with the expected shape); returns it without trailing '/'."""
    parse_secret_uri(uri)
    return uri.strip().rstrip('/')


def check_container_url(url):
    """Check a blob container URL (ValueError with the expected shape); returns it without trailing '/'."""
    parse_container_url(url)
    return url.strip().rstrip('/')


def check_database_name(name):
    if not name or not _DB_NAME_RE.match(name):
        raise ValueError(
            "target_database_name %r is not a valid database name: use 1 to 63 characters without '/', '\\', "
            "'?', '#', '%%' or leading white space." % (name,))


def check_file_prefix(prefix):
    if not prefix or not prefix.strip() or prefix.startswith('/') or len(prefix) > 1024:
        raise ValueError(
            "target_file_prefix %r is not valid: give a non-empty blob name prefix (up to 1024 characters) "
            "that does not start with '/'." % (prefix,))


def normalize_recovery_point_id(value):
    """Accept a recovery point id or the ARM id of a recovery point; return the id."""
    text = (value or '').strip().rstrip('/')
    if '/' in text:
        parts = text.split('/')
        if len(parts) < 2 or parts[-2].lower() != 'recoverypoints':
            raise ValueError(
                "recovery_point_id '%s' is neither a recovery point id nor the ARM id of a recovery point "
                "(.../backupInstances/<name>/recoveryPoints/<id>)." % (value,))
        text = parts[-1]
    if not text or not _RP_ID_RE.match(text):
        raise ValueError("recovery_point_id %r is not a valid recovery point id (letters, digits, '.', '_', '-')." % (value,))
    return text


def check_target(datasource_type, target):
    """Refuse target kinds the datasource type does not support (before any HTTP call)."""
    if isinstance(target, DatabaseTarget):
        if is_flexible(datasource_type):
            raise ValueError(FLEXIBLE_DATABASE_TARGET_MSG)
        dummy, server_type, dummy_name = parse_server_id(target.server_id)
        if server_type != 'servers':
            raise ValueError(
                "target_server_id '%s' is a flexible server: a database restore needs a single server "
                "(Microsoft.DBforPostgreSQL/servers). Restore as files (target_container_url and "
                "target_file_prefix) to rebuild on a flexible server." % target.server_id)
        check_database_name(target.database_name)
        if not target.secret_uri:
            raise ValueError('secret_uri is required for a database restore target.')
        check_secret_uri(target.secret_uri)
    elif isinstance(target, FilesTarget):
        if not target.container_url:
            raise ValueError('target_container_url is required for a files restore target.')
        check_container_url(target.container_url)
        check_file_prefix(target.file_prefix)
        if target.target_resource_id:
            check_resource_id(target.target_resource_id, CONTAINER_TYPE, 'target_container_id')
    else:
        raise TypeError('target must be a DatabaseTarget or a FilesTarget, not %r' % (target,))


def target_database_id(target):
    server_id, dummy, dummy_name = parse_server_id(target.server_id)
    return '%s/databases/%s' % (server_id, target.database_name)


def recovery_destination(target):
    """What a restore job reports as ``extendedInfo.recoveryDestination`` for this target.

    Database: the new database's ARM id. Files: ``<container url>/<file prefix>``.
    """
    if isinstance(target, DatabaseTarget):
        return target_database_id(target)
    return '%s/%s' % (target.container_url.rstrip('/'), target.file_prefix)


def choose_source_datastore(requested, point):
    """Pick the datastore to restore from and whether a rehydration request is needed.

    ``point`` is a normalised recovery point (its ``datastores`` list). ``auto`` prefers VaultStore and
    falls back to ArchiveStore; an explicit datastore must hold the point. Returns (datastore, rehydrate).
    """
    stores = list(point.get('datastores') or []) if point else []
    rp_id = point.get('recovery_point_id') if point else None
    requested = requested or 'auto'
    if requested == 'auto':
        if VAULT_STORE in stores:
            return VAULT_STORE, False
        if ARCHIVE_STORE in stores:
            return ARCHIVE_STORE, True
        raise ValueError(
            "Recovery point '%s' is in no datastore this module can restore from (it lists %s); "
            "PostgreSQL restores read VaultStore or ArchiveStore." % (rp_id, ', '.join(stores) or 'none'))
    if stores and requested not in stores:
        raise ValueError(
            "Recovery point '%s' is not in %s (it is in %s). Set source_datastore to auto or %s." % (
                rp_id, requested, ', '.join(stores), ' or '.join(s for s in stores if s in (VAULT_STORE, ARCHIVE_STORE))
                or 'another recovery point'))
    return requested, requested == ARCHIVE_STORE


def _datasource(object_type, resource_id, name, resource_type, datasource_type, location):
    return {
        'objectType': object_type,
        'resourceID': resource_id,
        'resourceName': name,
        'resourceType': resource_type,
        'datasourceType': datasource_type,
        'resourceUri': '',
        'resourceLocation': location,
    }


def _restore_target_info(target, datasource_type, restore_location):
    if isinstance(target, DatabaseTarget):
        server_id, dummy, server_name = parse_server_id(target.server_id)
        info = {
            'objectType': 'RestoreTargetInfo',
            'recoveryOption': 'FailIfExists',
            'restoreLocation': restore_location,
            'datasourceInfo': _datasource('Datasource', target_database_id(target), target.database_name,
                                          DATABASE_DATASOURCE_TYPE, datasource_type, restore_location),
            # DatasourceSet = the server; datasourceType stays the child (database) type, as the az CLI sends it.
            'datasourceSetInfo': _datasource('DatasourceSet', server_id, server_name, SERVER_RESOURCE_TYPE,
                                             datasource_type, restore_location),
            'datasourceAuthCredentials': {
                'objectType': 'SecretStoreBasedAuthCredentials',
                # Only the secret's URI: the service reads the value itself; `value` is never sent.
                'secretStoreResource': {'secretStoreType': 'AzureKeyVault', 'uri': target.secret_uri},
            },
        }
        return info
    details = {
        'url': target.container_url.rstrip('/'),
        'filePrefix': target.file_prefix,
        'restoreTargetLocationType': 'AzureBlobs',
    }
    if target.target_resource_id:
        details['targetResourceArmId'] = target.target_resource_id
    return {
        'objectType': 'RestoreFilesTargetInfo',
        'recoveryOption': 'FailIfExists',
        'restoreLocation': restore_location,
        'targetDetails': details,
    }


def build_restore_request(source_datasource_id, datasource_type, recovery_point_id, source_datastore, target,
                          restore_location, rehydration=None, identity=None):
    """The body of POST .../restore (an AzureBackupRestoreRequest).

    ``source_datastore`` VaultStore or ArchiveStore; ArchiveStore always gives an
    AzureBackupRestoreWithRehydrationRequest (``rehydration`` defaults to Standard, 15 days; it is
    ignored for VaultStore). ``identity`` is the ARM id of a user-assigned identity of the vault, or
    None for the vault's system-assigned identity (then no ``identityDetails`` is sent).
    """
    check_datasource_type(datasource_type)
    check_target(datasource_type, target)
    if source_datastore not in (VAULT_STORE, ARCHIVE_STORE):
        raise ValueError('source_datastore must be VaultStore or ArchiveStore, not %r.' % (source_datastore,))
    if not restore_location:
        raise ValueError('restore_location is required (the region of the restore target, normally the vault location).')
    request = {
        'objectType': RECOVERY_POINT_BASED,
        'recoveryPointId': normalize_recovery_point_id(recovery_point_id),
        'sourceDataStoreType': source_datastore,
        'sourceResourceId': source_datasource_id,
        'restoreTargetInfo': _restore_target_info(target, datasource_type, restore_location),
    }
    if source_datastore == ARCHIVE_STORE:
        rehydration = rehydration or Rehydration()
        check_rehydration(rehydration)
        request['objectType'] = WITH_REHYDRATION
        request['rehydrationPriority'] = rehydration.priority
        request['rehydrationRetentionDuration'] = rehydration_duration(rehydration.retention_days)
    if identity:
        check_resource_id(identity, USER_ASSIGNED_IDENTITY_TYPE, 'user_assigned_identity_id')
        request['identityDetails'] = {'useSystemAssignedIdentity': False, 'userAssignedIdentityArmUrl': identity}
    return request


def validate_body(request):
    """The body of POST .../validateRestore: only ``restoreRequestObject`` (no objectType, no top-level recoveryPointId)."""
    return {'restoreRequestObject': request}

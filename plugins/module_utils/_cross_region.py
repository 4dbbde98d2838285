# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""Cross-region restore (CRR): restoring from a geo-redundant vault's secondary (paired) region when its own region is
down, over an ArmClient passed in.

The vault and its backup instances are read from Azure Resource Graph (global: it answers while the vault's region is
down; what the az CLI does for --use-secondary-region), the secondary region is the one the vault reports
(``properties.replicatedRegions``), and every other call goes to
``/subscriptions/{s}/resourceGroups/{vault rg}/providers/Microsoft.DataProtection/locations/{secondary}``:
fetchSecondaryRecoveryPoints, validateCrossRegionRestore, crossRegionRestore, fetchCrossRegionRestoreJob(s).
"""

from __future__ import annotations

from collections import namedtuple
from urllib.parse import urlsplit

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import (
    DataProtectionError, error_from_response,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._ids import (
    backup_instance_id, job_guid, vault_id,
)

CROSS_REGION_ARGSPEC = {
    'use_secondary_region': {'type': 'bool', 'default': False},
    'secondary_region': {'type': 'str'},
}
RESOURCE_GRAPH_PATH = '/providers/Microsoft.ResourceGraph/resources'
RESOURCE_GRAPH_API_VERSION = '2021-03-01'
STORAGE_API_VERSION = '2023-01-01'
SERVER_API_VERSION = '2017-12-01'
NOT_ENABLED = 'CrossRegionRestoreNotEnabled'
WRONG_REGION = 'TargetNotInSecondaryRegion'
SWITCH_HINT = ("If the vault's region is down, restore from its paired region instead: run again with "
               'use_secondary_region: true (cross-region restore; the vault needs cross-region restore enabled, the '
               'target must be in the secondary region, and the newest points reach it some hours late).')

# The vault, the region of its backups and the secondary region, and the location-scoped path the CRR calls use.
CrossRegion = namedtuple('CrossRegion', ['vault', 'vault_id', 'source_region', 'secondary_region', 'location_path'])


def region_key(name):
    """'North Europe' and 'northeurope' are the same region."""
    return str(name or '').replace(' ', '').lower()


def check_params(params):
    """ValueError for a secondary_region without use_secondary_region, or an empty one (before any call)."""
    region = params.get('secondary_region')
    if region is not None and not params.get('use_secondary_region'):
        raise ValueError('secondary_region is only used with use_secondary_region: true.')
    if region is not None and not region_key(region):
        raise ValueError("secondary_region must not be empty: give a region such as northeurope, or leave it out to "
                         "use the vault's secondary region.")


def with_outage_hint(err, params):
    """A server error or unreachable service while the primary region is used: name the switch that avoids it."""
    if 'use_secondary_region' not in (params or {}) or params.get('use_secondary_region'):
        return err
    if (err.status or 0) >= 500 or err.code in ('ConnectionFailed', 'RequestTimeout'):
        if SWITCH_HINT not in err.recommended_actions:
            err.recommended_actions.append(SWITCH_HINT)
    return err


# ---------------------------------------------------------------- Resource Graph

def _quote(value):
    return str(value).replace("'", "''")


def resource_graph(client, query, what):
    """The rows of a Resource Graph query (one page: the queries here name one vault or instance)."""
    response = client.post(RESOURCE_GRAPH_PATH, {'subscriptions': [client.subscription_id], 'query': query},
                           params={'api-version': RESOURCE_GRAPH_API_VERSION}, idempotent=True)
    return client.json_or_raise(response, what).get('data') or []


def find_vault(client, params):
    """The CrossRegion context of vault_name: its CRR settings and secondary region, as the service reports them."""
    name, group = params['vault_name'], params['resource_group']
    what = "Find backup vault '%s' (Resource Graph)" % name
    rows = resource_graph(client, "Resources | where type =~ 'microsoft.dataprotection/backupvaults' and "
                          "resourceGroup =~ '%s' and name =~ '%s'" % (_quote(group), _quote(name)), what)
    if not rows:
        raise DataProtectionError(what, "no backup vault '%s' in resource group '%s' of subscription %s." % (
            name, group, client.subscription_id), code='ResourceNotFound', recommended_actions=[
                'Check vault_name, resource_group and subscription_id (Resource Graph lists what the identity may '
                'read; it needs Reader on the vault).'])
    vault = rows[0]
    props = vault.get('properties') or {}
    crr = ((props.get('featureSettings') or {}).get('crossRegionRestoreSettings') or {}).get('state')
    if str(crr).lower() != 'enabled':
        raise DataProtectionError(what, "cross-region restore is not enabled on backup vault '%s' (state %s); its "
                                  'recovery points are not restorable from another region.' % (name, crr or 'unset'),
                                  code=NOT_ENABLED, recommended_actions=[
                                      'Restore in the primary region (use_secondary_region: false) once it is back, '
                                      'or enable cross-region restore on the vault (geo-redundant storage) for the '
                                      'next disaster: it cannot help with the points already taken.'])
    replicated = [r for r in props.get('replicatedRegions') or [] if r]
    reported = replicated[0] if len(replicated) == 1 else None
    wanted = params.get('secondary_region')
    if wanted and reported and region_key(wanted) != region_key(reported):
        raise ValueError("secondary_region '%s' is not the secondary region of backup vault '%s': the vault replicates "
                         "to '%s'. Leave secondary_region out or give '%s'." % (wanted, name, reported, reported))
    secondary = wanted or reported
    if not secondary:
        raise DataProtectionError(what, "backup vault '%s' reports no secondary region (replicatedRegions: %s)."
                                  % (name, replicated), code='SecondaryRegionUnknown', recommended_actions=[
                                      "Give secondary_region: the paired region of the vault's region '%s'."
                                      % vault.get('location')])
    vid = vault_id(client.subscription_id, group, name)
    path = '/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataProtection/locations/%s' % (
        client.subscription_id, group, region_key(secondary))
    return CrossRegion(vault, vid, vault.get('location'), region_key(secondary), path)


def find_backup_instance(client, params, ctx):
    """The raw backup instance (by name, or by the datasource it protects) from Resource Graph."""
    if params.get('backup_instance_name'):
        wanted = backup_instance_id(client.subscription_id, params['resource_group'], params['vault_name'],
                                    params['backup_instance_name'])
        clause, what = "id =~ '%s'" % _quote(wanted), "backup instance '%s'" % params['backup_instance_name']
    else:
        clause, what = ("properties.dataSourceInfo.resourceID =~ '%s'" % _quote(params['datasource_id']),
                        "the backup instance of '%s'" % params['datasource_id'])
    rows = resource_graph(client, "RecoveryServicesResources | where type =~ "
                          "'microsoft.dataprotection/backupvaults/backupinstances' and " + clause,
                          'Find %s (Resource Graph)' % what)
    prefix = ctx.vault_id.lower() + '/backupinstances/'
    rows = [r for r in rows if str(r.get('id') or '').lower().startswith(prefix)]
    if not rows:
        raise DataProtectionError('Find %s (Resource Graph)' % what, "no such backup instance in vault '%s'."
                                  % params['vault_name'], code='BackupInstanceNotFound', recommended_actions=[
                                      'Check backup_instance_name or datasource_id, and vault_name.'])
    return rows[0]


# ---------------------------------------------------------------- the location-scoped calls

def _iter_post_pages(client, path, body, what, params=None):
    """The items of a POST list call: the first page answers the POST, the nextLinks are followed with GET."""
    page = client.json_or_raise(client.post(path, body, params=params, idempotent=True), what)
    yield from page.get('value') or []
    if page.get('nextLink'):
        yield from client.iter_pages(page['nextLink'])


def iter_secondary_points(client, ctx, bi_id, time_filter=None):
    body = {'sourceRegion': ctx.source_region, 'sourceBackupInstanceId': bi_id}
    return _iter_post_pages(client, ctx.location_path + '/fetchSecondaryRecoveryPoints', body,
                            'Fetch secondary recovery points (%s)' % ctx.secondary_region,
                            params={'$filter': time_filter} if time_filter else None)


def request_body(ctx, bi_id, request):
    """The body of validateCrossRegionRestore and crossRegionRestore."""
    return {'restoreRequestObject': request,
            'crossRegionRestoreDetails': {'sourceRegion': ctx.source_region, 'sourceBackupInstanceId': bi_id}}


def post_validate(client, ctx, bi_id, request):
    # validates only: retried like a read (a lost answer changes nothing)
    return client.post(ctx.location_path + '/validateCrossRegionRestore', request_body(ctx, bi_id, request),
                       idempotent=True)


def post_restore(client, ctx, bi_id, request):
    return client.post(ctx.location_path + '/crossRegionRestore', request_body(ctx, bi_id, request))


def iter_jobs(client, ctx):
    body = {'sourceRegion': ctx.source_region, 'sourceBackupVaultId': ctx.vault_id}
    return _iter_post_pages(client, ctx.location_path + '/fetchCrossRegionRestoreJobs', body,
                            'Fetch cross-region restore jobs (%s)' % ctx.secondary_region)


def job_fetcher(client, ctx, job):
    """A callable that POSTs fetchCrossRegionRestoreJob for `job` (GUID or ARM id): what a job poll sends."""
    body = {'sourceRegion': ctx.source_region, 'sourceBackupVaultId': ctx.vault_id, 'jobId': job_guid(job)}
    return lambda: client.post(ctx.location_path + '/fetchCrossRegionRestoreJob', body, idempotent=True)


def get_job(client, ctx, job):
    what = 'Fetch cross-region restore job %s' % job_guid(job)
    response = job_fetcher(client, ctx, job)()
    if response.status_code == 404:
        error = error_from_response(what, response)
        error.recommended_actions = ['Check job_id: cross-region restore jobs are listed by leaving job_id out (with '
                                     'use_secondary_region: true).']
        raise error
    return client.json_or_raise(response, what)


# ---------------------------------------------------------------- the target's region

def _account_name(container_url):
    parts = urlsplit(container_url)
    host = (parts.hostname or '').lower()
    if host.endswith('.blob.core.windows.net') or '.blob.' in host:
        return host.split('.', 1)[0]
    segments = [s for s in parts.path.split('/') if s]
    return segments[-2] if len(segments) >= 2 else None


def target_location(client, target):
    """(what, name, location) of the target server or storage account; location None when it cannot be read."""
    if hasattr(target, 'server_id'):
        name = target.server_id.rstrip('/').rsplit('/', 1)[-1]
        response = client.get(target.server_id, params={'api-version': SERVER_API_VERSION})
        if response.status_code == 404:
            raise DataProtectionError('Get target server', "target server '%s' does not exist." % target.server_id,
                                      code='ResourceNotFound', status=404,
                                      recommended_actions=['Check target_server_id.'])
        return 'target server', name, client.json_or_raise(response, 'Get target server').get('location')
    name = _account_name(target.container_url)
    if target.target_resource_id:
        account_id = target.target_resource_id.split('/blobServices/', 1)[0]
        body = client.json_or_raise(client.get(account_id, params={'api-version': STORAGE_API_VERSION}),
                                    'Get target storage account')
        return 'target storage account', name, body.get('location')
    for item in client.iter_pages('/subscriptions/%s/providers/Microsoft.Storage/storageAccounts'
                                  % client.subscription_id, params={'api-version': STORAGE_API_VERSION}):
        if str(item.get('name') or '').lower() == str(name or '').lower():
            return 'target storage account', name, item.get('location')
    return 'target storage account', name, None


def check_target_region(client, ctx, target, restore_location=None):
    """The target (and restore_location) must be in the secondary region: checked before anything is sent."""
    if restore_location and region_key(restore_location) != ctx.secondary_region:
        raise ValueError("restore_location '%s' is not the secondary region '%s' of the vault: a cross-region restore "
                         'restores there. Leave restore_location out.' % (restore_location, ctx.secondary_region))
    what, name, location = target_location(client, target)
    if location is None:
        raise DataProtectionError('Check the %s region' % what, "the location of %s '%s' could not be read." % (
            what, name), code='TargetLocationUnknown', recommended_actions=[
                'Give target_container_id (the ARM id of the container), or check that the identity may read it.'])
    if region_key(location) != ctx.secondary_region:
        raise DataProtectionError(
            'Check the %s region' % what, "%s '%s' is in '%s', not in the vault's secondary region '%s': a cross-region "
            'restore restores into the secondary region.' % (what, name, location, ctx.secondary_region),
            code=WRONG_REGION, recommended_actions=[
                'Restore into a %s in %s.' % (what.replace('target ', ''), ctx.secondary_region)])
    return location

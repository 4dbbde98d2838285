# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: this file is private to the azure_backup.dataprotection collection.
# Its functions may change without notice; do not import it from other collections.
"""The REST steps the restore modules share, over an ArmClient passed in (no requests import here).

Argument specs of the backup instance and restore target options, finding the backup instance (by name or by
the protected datasource), the vault's location, a recovery point, the vault's restore jobs, and turning the
plain module options into a restore request. Everything that can be checked locally is checked in
``check_restore_params`` before the first HTTP call.
"""

from __future__ import annotations

from collections import namedtuple
from urllib.parse import quote

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _cross_region
from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _restore_request as rr
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import (
    DataProtectionError, error_from_response, error_from_user_facing,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._ids import (
    backup_instance_id, job_guid, parse_resource_id, vault_id,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._jobs import (
    is_failed, normalize_job, scan_restore_jobs,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._lro import wait_for_operation
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._recovery_points import (
    RecoveryPointNotFound, build_time_filter, iter_filtered, normalize_recovery_point, select_recovery_point,
)

# api-version of Microsoft.DBforPostgreSQL single servers (the provider's last stable one for servers/databases).
POSTGRESQL_API_VERSION = '2017-12-01'
# How a POST whose outcome is unknown is recovered: re-list the jobs after these pauses (seconds), then give up.
OUTCOME_RECHECK_DELAYS = (5, 10, 20, 40)
_LIST_LIMIT = 20

BACKUP_INSTANCE_ARGSPEC = {
    'vault_name': {'type': 'str', 'required': True},
    'resource_group': {'type': 'str', 'required': True},
    'backup_instance_name': {'type': 'str'},
    'datasource_id': {'type': 'str'},
}
BACKUP_INSTANCE_CONSTRAINTS = {
    'mutually_exclusive': [('backup_instance_name', 'datasource_id')],
    'required_one_of': [('backup_instance_name', 'datasource_id')],
}

RESTORE_ARGSPEC = {
    'recovery_point_id': {'type': 'str', 'required': True},
    'target_server_id': {'type': 'str'},
    'target_database_name': {'type': 'str'},
    # The URI of a Key Vault secret is not a secret: the service reads the value itself.
    'secret_uri': {'type': 'str', 'no_log': False},
    'target_container_url': {'type': 'str'},
    'target_file_prefix': {'type': 'str'},
    'target_container_id': {'type': 'str'},
    'source_datastore': {'type': 'str', 'choices': list(rr.SOURCE_DATASTORE_CHOICES), 'default': 'auto'},
    'rehydration_priority': {'type': 'str', 'choices': list(rr.REHYDRATION_PRIORITIES), 'default': 'Standard'},
    'rehydration_retention_days': {'type': 'int', 'default': rr.DEFAULT_REHYDRATION_DAYS},
    'restore_location': {'type': 'str'},
    'user_assigned_identity_id': {'type': 'str'},
}
RESTORE_CONSTRAINTS = {
    'mutually_exclusive': [('target_server_id', 'target_container_url'),
                           ('target_database_name', 'target_file_prefix'),
                           ('secret_uri', 'target_container_url'),
                           ('target_container_id', 'target_server_id')],
    'required_one_of': [('target_server_id', 'target_container_url')],
    'required_together': [('target_server_id', 'target_database_name', 'secret_uri'),
                          ('target_container_url', 'target_file_prefix')],
    'required_by': {'target_container_id': 'target_container_url'},
}

RestoreInputs = namedtuple('RestoreInputs', ['recovery_point_id', 'target', 'rehydration', 'identity', 'datasource'])
RestorePlan = namedtuple('RestorePlan', ['request', 'backup_instance', 'backup_instance_path', 'recovery_point',
                                         'target', 'destination', 'source_datastore', 'vault_path', 'cross_region'],
                         defaults=(None,))  # cross_region: the _cross_region.CrossRegion of a cross-region restore


def merge_constraints(*groups):
    """Merge AnsibleModule constraint dicts (lists are concatenated, dicts updated)."""
    merged = {}
    for group in groups:
        for key, value in group.items():
            if isinstance(value, dict):
                merged.setdefault(key, {}).update(value)
            else:
                merged.setdefault(key, []).extend(value)
    return merged


# ---------------------------------------------------------------- local checks (no HTTP)

def check_datasource_option(datasource_id):
    """(normalised id, datasource type) for the datasource_id option, or (None, None)."""
    if not datasource_id:
        return None, None
    return rr.parse_datasource_id(datasource_id)


def check_restore_params(params):
    """Everything about the restore options that can be checked without a call; raises ValueError."""
    if params.get('target_server_id'):
        target = rr.DatabaseTarget(params['target_server_id'], params.get('target_database_name'),
                                   params.get('secret_uri'))
    else:
        target = rr.FilesTarget(params.get('target_container_url'), params.get('target_file_prefix'),
                                params.get('target_container_id'))
    datasource = check_datasource_option(params.get('datasource_id'))
    # The target's shape is checked now; its kind against the datasource type now when datasource_id gives the
    # type, else once the backup instance has been read.
    if datasource[1]:
        rr.check_target(datasource[1], target)
    elif isinstance(target, rr.DatabaseTarget):
        rr.check_target(rr.DATABASE_DATASOURCE_TYPE, target)
    else:
        rr.check_target(rr.FLEXIBLE_DATASOURCE_TYPE, target)
    rehydration = rr.Rehydration(params.get('rehydration_priority') or 'Standard',
                                 params.get('rehydration_retention_days'))
    rr.check_rehydration(rehydration)
    identity = params.get('user_assigned_identity_id')
    if identity:
        rr.check_resource_id(identity, rr.USER_ASSIGNED_IDENTITY_TYPE, 'user_assigned_identity_id')
    if params.get('restore_location') is not None and not str(params['restore_location']).strip():
        raise ValueError('restore_location must not be empty: give a region name such as westeurope, or leave it '
                         "out to use the vault's location.")
    # No recovery_point_id: pg_restore selects one (select/before) once the backup instance is known.
    point_id = rr.normalize_recovery_point_id(params['recovery_point_id']) if params.get('recovery_point_id') else None
    return RestoreInputs(point_id, target, rehydration, identity, datasource)


# ---------------------------------------------------------------- backup instances

def vault_path(client, params):
    return vault_id(client.subscription_id, params['resource_group'], params['vault_name'])


def normalize_backup_instance(raw):
    """A flat snake_case summary of a BackupInstanceResource (no credentials)."""
    raw = raw or {}
    props = raw.get('properties') or {}
    source = props.get('dataSourceInfo') or {}
    source_set = props.get('dataSourceSetInfo') or {}
    return {
        'id': raw.get('id'),
        'name': raw.get('name'),
        'friendly_name': props.get('friendlyName'),
        'datasource_id': source.get('resourceID'),
        'datasource_type': source.get('datasourceType') or source.get('resourceType'),
        'datasource_name': source.get('resourceName'),
        'datasource_location': source.get('resourceLocation'),
        'datasource_set_id': source_set.get('resourceID'),
        'protection_status': (props.get('protectionStatus') or {}).get('status'),
        'current_protection_state': props.get('currentProtectionState'),
        'provisioning_state': props.get('provisioningState'),
        'policy_id': (props.get('policyInfo') or {}).get('policyId'),
    }


def _same_id(left, right):
    return (left or '').strip().rstrip('/').lower() == (right or '').strip().rstrip('/').lower()


def find_backup_instance(instances, datasource_id):
    """(the raw backup instance protecting ``datasource_id`` or None, [(name, datasource id) seen]) - streams."""
    seen = []
    for raw in instances:
        source = ((raw or {}).get('properties') or {}).get('dataSourceInfo') or {}
        if datasource_id and _same_id(source.get('resourceID'), datasource_id):
            return raw, seen
        seen.append((raw.get('name'), source.get('resourceID')))
    return None, seen


def _listing(seen):
    if not seen:
        return 'The vault has no backup instances.'
    shown = ', '.join("'%s' (%s)" % item for item in seen[:_LIST_LIMIT])
    more = ' and %d more' % (len(seen) - _LIST_LIMIT) if len(seen) > _LIST_LIMIT else ''
    return 'The vault protects: %s%s.' % (shown, more)


def get_backup_instance(client, params):
    """The raw backup instance named by backup_instance_name, or the one protecting datasource_id."""
    vault = vault_path(client, params)
    where = "vault '%s' (resource group '%s')" % (params['vault_name'], params['resource_group'])
    if params.get('backup_instance_name'):
        name = params['backup_instance_name']
        what = "Get backup instance '%s'" % name
        response = client.get(backup_instance_id(client.subscription_id, params['resource_group'],
                                                 params['vault_name'], name))
        if response.status_code == 404:
            error = error_from_response(what, response)
            try:
                dummy, seen = find_backup_instance(client.iter_pages(vault + '/backupInstances'), None)
            except DataProtectionError:
                error.recommended_actions = ['Check subscription_id, resource_group and vault_name: the vault '
                                             'could not be read either.']
                raise error from None
            raise DataProtectionError(
                what, "no backup instance '%s' in %s. %s" % (name, where, _listing(seen)), code=error.code,
                status=404, request_id=error.request_id, correlation_id=error.correlation_id,
                recommended_actions=['Check backup_instance_name (the name, not the friendly name), or give '
                                     'datasource_id instead.'])
        return client.json_or_raise(response, what)
    datasource_id = params['datasource_id']
    raw, seen = find_backup_instance(client.iter_pages(vault + '/backupInstances'), datasource_id)
    if raw is None:
        raise DataProtectionError(
            'Find backup instance', "no backup instance in %s protects '%s'. %s" % (where, datasource_id, _listing(seen)),
            code='BackupInstanceNotFound', recommended_actions=[
                'Check datasource_id (the ARM id of the protected single server database or flexible server) and '
                'vault_name, or give backup_instance_name.'])
    return raw


def backup_instance_path(client, params, raw):
    return backup_instance_id(client.subscription_id, params['resource_group'], params['vault_name'], raw.get('name'))


# ---------------------------------------------------------------- vault, recovery points, databases

def get_vault(client, path):
    """The raw Backup vault (its location, and its identity for the permissions)."""
    response = client.get(path)
    if response.status_code == 404:
        error = error_from_response('Get backup vault', response)
        error.recommended_actions = ["Check vault_name ('%s') and resource_group (the vault's resource group) and "
                                     "subscription_id." % path.rstrip('/').rsplit('/', 1)[-1]]
        raise error
    return client.json_or_raise(response, 'Get backup vault')


def get_vault_location(client, path):
    vault = get_vault(client, path)
    location = vault.get('location')
    if not location:
        raise DataProtectionError('Get backup vault', 'the vault has no location.', code='InvalidResponse',
                                  recommended_actions=['Give restore_location.'])
    return location


def get_recovery_point(client, bi_path, bi_name, recovery_point_id):
    """The raw recovery point; a 404 becomes a message that says how to find valid ids."""
    what = "Get recovery point '%s'" % recovery_point_id
    response = client.get('%s/recoveryPoints/%s' % (bi_path, quote(recovery_point_id, safe='')))
    if response.status_code == 404:
        error = error_from_response(what, response)
        raise DataProtectionError(
            what, "recovery point '%s' does not exist in backup instance '%s'." % (recovery_point_id, bi_name),
            code=error.code, status=404, request_id=error.request_id, correlation_id=error.correlation_id,
            recommended_actions=['List the recovery points with azure_backup.dataprotection.pg_recovery_point_info '
                                 '(select: latest gives the newest) and use its recovery_point_id.'])
    return client.json_or_raise(response, what)


def target_database_exists(client, target):
    """True/False when the target database's existence could be read, None (and why) when it could not."""
    path = rr.target_database_id(target)
    response = client.get(path, params={'api-version': POSTGRESQL_API_VERSION})
    if response.status_code == 200:
        return True, None
    if response.status_code == 404:
        return False, None
    return None, 'HTTP %d' % response.status_code


# ---------------------------------------------------------------- the request

def select_point(client, bi_path, bi_name, mode, before=None, datastore=None):
    """The latest/earliest normalised recovery point (at or before `before`, in `datastore` when given).

    The time bound goes to the service as $filter; the points are streamed, one page held at a time.
    """
    time_filter = build_time_filter(None, before)
    pages = client.iter_pages(bi_path + '/recoveryPoints', params={'$filter': time_filter} if time_filter else None)
    try:
        return select_recovery_point(iter_filtered(pages, datastore=datastore, end=before), mode, before=before)
    except RecoveryPointNotFound as exc:
        where = ' in %s' % datastore if datastore else ''
        if before is not None:
            where += ' at or before %s (before)' % before.strftime('%Y-%m-%dT%H:%M:%SZ')
        raise DataProtectionError("Select the %s recovery point of backup instance '%s'" % (mode, bi_name),
                                  '%s%s' % (exc, where), code='RecoveryPointNotFound', recommended_actions=[
                                      'List the recovery points with azure_backup.dataprotection.'
                                      'pg_recovery_point_info, or take a backup first.']) from None


# pylint: disable-next=too-many-arguments
def prepare_restore(client, params, inputs, vault=None, select=None, before=None):
    """Read what the request needs (backup instance, vault location, recovery point) and build it.

    `vault`: the raw vault when the caller has read it already. `select` (latest/earliest) and `before` pick the
    recovery point from the list instead of reading inputs.recovery_point_id. Returns a RestorePlan. Raises
    ValueError (bad input found late) or DataProtectionError (service).
    """
    if params.get('use_secondary_region'):
        return _prepare_cross_region(client, params, inputs, select, before)
    bi_raw = get_backup_instance(client, params)
    backup_instance = normalize_backup_instance(bi_raw)
    datasource_type = backup_instance['datasource_type']
    rr.check_datasource_type(datasource_type, backup_instance['name'])
    rr.check_target(datasource_type, inputs.target)
    bi_path = backup_instance_path(client, params, bi_raw)
    path = vault_path(client, params)
    # A PostgreSQL server is backed up to a vault in its own region: the backup instance says it, so the vault is
    # read only when the caller has not and the backup instance does not name its datasource's region.
    location = ((params.get('restore_location') or '').strip() or (vault or {}).get('location')
                or backup_instance.get('datasource_location') or get_vault_location(client, path))
    if select:
        wanted = params.get('source_datastore')
        point = select_point(client, bi_path, backup_instance['name'], select, before,
                             datastore=wanted if wanted in ('VaultStore', 'ArchiveStore') else None)
    else:
        point = normalize_recovery_point(get_recovery_point(client, bi_path, backup_instance['name'],
                                                            inputs.recovery_point_id))
    recovery_point_id = point['recovery_point_id']
    datastore, dummy_rehydrate = rr.choose_source_datastore(params.get('source_datastore'), point)
    request = rr.build_restore_request(
        backup_instance['datasource_id'], datasource_type, recovery_point_id, datastore, inputs.target,
        location, rehydration=inputs.rehydration, identity=inputs.identity)
    return RestorePlan(request, backup_instance, bi_path, point, inputs.target,
                       rr.recovery_destination(inputs.target), datastore, path)


def select_secondary_point(client, ctx, bi_path, bi_name, select=None, before=None, recovery_point_id=None):
    """The normalised secondary recovery point: latest/earliest (at or before `before`), or the one with this id."""
    time_filter = build_time_filter(None, before) if select else None
    points = iter_filtered(_cross_region.iter_secondary_points(client, ctx, bi_path, time_filter), end=before)
    what = "Select the recovery point of backup instance '%s' in the secondary region %s" % (
        bi_name, ctx.secondary_region)
    if not select:
        point = next((p for p in points if p['recovery_point_id'] == recovery_point_id), None)
        if point is None:
            raise DataProtectionError(what, "recovery point '%s' is not in the secondary region (yet): points reach it "
                                      'some hours after they are taken.' % recovery_point_id,
                                      code='RecoveryPointNotFound', recommended_actions=[
                                          'List the secondary points with azure_backup.dataprotection.'
                                          'pg_recovery_point_info (use_secondary_region: true, select: latest).'])
        return point
    try:
        return select_recovery_point(points, select, before=before)
    except RecoveryPointNotFound as exc:
        raise DataProtectionError(what, '%s (points reach the secondary region some hours after they are taken).'
                                  % str(exc).rstrip('.'), code='RecoveryPointNotFound') from None


def _prepare_cross_region(client, params, inputs, select=None, before=None):
    """prepare_restore from the vault's secondary region: the vault and backup instance from Resource Graph, the
    target checked to be in the secondary region, the point from the secondary points."""
    ctx = _cross_region.find_vault(client, params)
    bi_raw = _cross_region.find_backup_instance(client, params, ctx)
    backup_instance = normalize_backup_instance(bi_raw)
    datasource_type = backup_instance['datasource_type']
    rr.check_datasource_type(datasource_type, backup_instance['name'])
    rr.check_target(datasource_type, inputs.target)
    _cross_region.check_target_region(client, ctx, inputs.target, params.get('restore_location'))
    bi_path = backup_instance_path(client, params, bi_raw)
    point = select_secondary_point(client, ctx, bi_path, backup_instance['name'], select, before,
                                   inputs.recovery_point_id)
    datastore, dummy_rehydrate = rr.choose_source_datastore(params.get('source_datastore'), point)
    request = rr.build_restore_request(
        backup_instance['datasource_id'], datasource_type, point['recovery_point_id'], datastore, inputs.target,
        ctx.secondary_region, rehydration=inputs.rehydration, identity=inputs.identity)
    return RestorePlan(request, backup_instance, bi_path, point, inputs.target, rr.recovery_destination(inputs.target),
                       datastore, ctx.vault_id, ctx)


def plan_result(plan):
    """The result fields every restore module returns once the request is built."""
    result = {'changed': False, 'request': plan.request, 'source_datastore': plan.source_datastore,
              'backup_instance': plan.backup_instance, 'recovery_point': plan.recovery_point}
    if plan.cross_region:
        result['cross_region'] = cross_region_result(plan.cross_region)
    return result


def cross_region_result(ctx):
    return {'source_region': ctx.source_region, 'secondary_region': ctx.secondary_region}


def validate_restore(client, plan, deadline):
    """POST validateRestore ({"restoreRequestObject": request}) and wait for the operation; raises on failure.

    validateRestore changes nothing, so it is retried like a GET (5xx, a lost answer): never RequestOutcomeUnknown.
    """
    if plan.cross_region:
        response = _cross_region.post_validate(client, plan.cross_region, plan.backup_instance_path, plan.request)
    else:
        response = client.post(plan.backup_instance_path + '/validateRestore', rr.validate_body(plan.request),
                               idempotent=True)
    return wait_for_operation(client, response, deadline, 'Validate restore', result_needed=False)


# ---------------------------------------------------------------- jobs

def find_existing_restore(client, plan):
    """The normalised restore job already started for the plan's backup instance, point and target (or None)."""
    return scan_existing_restores(client, plan).same_point


def scan_existing_restores(client, plan):
    """One pass over the vault's jobs: the plan's own restore job, and the last completed restore to its target."""
    jobs = (_cross_region.iter_jobs(client, plan.cross_region) if plan.cross_region
            else client.iter_pages(plan.vault_path + '/backupJobs'))
    return scan_restore_jobs(jobs, plan.backup_instance['id']
                             or plan.backup_instance_path, plan.request['recoveryPointId'], plan.destination)


def recheck_after_unknown_outcome(client, plan, deadline, delays=OUTCOME_RECHECK_DELAYS):
    """After a restore POST whose outcome is unknown: look for the job it may have created, a few times."""
    for delay in (0,) + tuple(delays):
        if delay:
            if deadline.expired():
                break
            deadline.sleep(delay)
        try:
            job = find_existing_restore(client, plan)
        except DataProtectionError:
            job = None  # a failing list is one more reason to look again, not to post again
        if job is not None:
            return job
    return None


def job_path(plan_vault_path, job_id):
    return '%s/backupJobs/%s' % (plan_vault_path, job_guid(job_id))


def job_failure(raw_job):
    """A DataProtectionError describing a Failed/Cancelled job from its errorDetails (None if it did not fail)."""
    job = normalize_job(raw_job)
    if not is_failed(job['status']):
        return None
    what = "Restore job %s ended %s" % (job['job_id'], job['status'])
    details = ((raw_job or {}).get('properties') or {}).get('errorDetails') or []
    first = next((d for d in details if isinstance(d, dict)), None)
    if first is not None:
        return error_from_user_facing(what, first, job_id=job['job_id'])
    return DataProtectionError(
        what, 'the job reports no error details (a cancelled job was usually cancelled by someone, in the portal or '
        'with the CLI).', code='Job' + str(job['status']), job_id=job['job_id'], recommended_actions=[
            'Read the job with the job_status.yml playbook (job_id=%s) or azure_backup.dataprotection.'
            'dataprotection_job_info. Running the task again starts a new restore (a failed or cancelled job is '
            'never reused); drop a database it left behind first.' % job['job_id']])


def check_generic_resource_id(value, option):
    """An ARM id of any type (ValueError with the expected shape); returns the normalised id."""
    return parse_resource_id(value, option=option)['id']

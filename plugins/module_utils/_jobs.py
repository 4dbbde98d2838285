# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: this file is private to the azure_backup.dataprotection collection.
# Its functions may change without notice; do not import it from other collections.
"""Backup vault jobs: normalisation, client-side filters, finding an existing restore job (pure: no HTTP)."""

from __future__ import annotations

from collections import namedtuple

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._recovery_points import (
    parse_service_time,
)

# Job status is a free string (reference §3). Compared case-insensitively; unknown values mean "running".
SUCCEEDED_STATUSES = frozenset(s.lower() for s in (
    'Completed', 'Succeeded', 'CompletedWithWarnings', 'Success', 'SuccessWithWarning'))
FAILED_STATUSES = frozenset(s.lower() for s in ('Failed', 'Cancelled', 'Canceled'))
TERMINAL_STATUSES = SUCCEEDED_STATUSES | FAILED_STATUSES
# A restore job in one of these states will not restore anything: a re-run may start a new one.
_NOT_REUSABLE_STATUSES = FAILED_STATUSES | frozenset(('cancelling', 'canceling'))

RESTORE_OPERATION = 'Restore'


def _lower(value):
    return str(value).lower() if value is not None else None


def is_terminal(status):
    return _lower(status) in TERMINAL_STATUSES


def is_succeeded(status):
    return _lower(status) in SUCCEEDED_STATUSES


def is_failed(status):
    return _lower(status) in FAILED_STATUSES


def last_segment(value):
    """Last path segment of an ARM id (the name); the value itself when it has no '/'."""
    if not value:
        return value
    return str(value).rstrip('/').rsplit('/', 1)[-1]


def normalize_destination(value):
    """Canonical form of a restore destination (ARM id or URL) for comparisons."""
    if not value:
        return ''
    return str(value).strip().rstrip('/').lower()


def _to_int(value):
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _normalize_error(item):
    item = item or {}
    actions = item.get('recommendedAction')
    if isinstance(actions, str):
        actions = [actions]
    return {
        'code': item.get('code'),
        'message': item.get('message'),
        'recommended_actions': list(actions or []),
        'is_retryable': item.get('isRetryable'),
        'is_user_error': item.get('isUserError'),
    }


def _normalize_warning(item):
    item = item or {}
    warning = item.get('warning')
    if isinstance(warning, dict):
        code, message = warning.get('code'), warning.get('message')
    else:
        code, message = None, warning
    return {'resource_name': item.get('resourceName'), 'code': code, 'message': message}


def normalize_job(raw):
    """Turn an AzureBackupJobResource into a flat snake_case dict (see the modules' RETURN docs)."""
    raw = raw or {}
    props = raw.get('properties') or {}
    ext = props.get('extendedInfo') or {}
    status = props.get('status')
    source_rp = ext.get('sourceRecoverPoint') or {}
    transferred = ext.get('dataTransferredInBytes')
    if transferred is None:
        transferred = ext.get('dataTransferedInBytes')  # the live service's spelling
    backup_instance_id = props.get('backupInstanceId')
    end_time = props.get('endTime')
    if end_time and str(end_time).startswith('0001-01-01'):
        end_time = None
    return {
        'job_id': raw.get('name') or last_segment(raw.get('id')),
        'id': raw.get('id'),
        'operation': props.get('operation'),
        'operation_category': props.get('operationCategory'),
        'status': status,
        'is_terminal': is_terminal(status),
        'succeeded': is_succeeded(status),
        'start_time': props.get('startTime'),
        'end_time': end_time,
        'duration': props.get('duration'),
        'backup_instance_id': backup_instance_id,
        'backup_instance_name': last_segment(backup_instance_id) or props.get('backupInstanceFriendlyName'),
        'backup_instance_friendly_name': props.get('backupInstanceFriendlyName'),
        'datasource_id': props.get('dataSourceId'),
        'datasource_name': props.get('dataSourceName'),
        'datasource_type': props.get('dataSourceType'),
        'vault_name': props.get('vaultName'),
        'restore_type': props.get('restoreType'),
        'rehydration_priority': props.get('rehydrationPriority'),
        'source_recovery_point': {
            'id': source_rp.get('recoveryPointID') or source_rp.get('recoveryPointId'),
            'time': source_rp.get('recoveryPointTime'),
        },
        'recovery_destination': ext.get('recoveryDestination'),
        'data_transferred_bytes': _to_int(transferred),
        'sub_tasks': [
            {
                'id': task.get('taskId'),
                'name': task.get('taskName'),
                'status': task.get('taskStatus'),
                'progress': task.get('taskProgress'),
            }
            for task in (ext.get('subTasks') or []) if isinstance(task, dict)
        ],
        'errors': [_normalize_error(err) for err in (props.get('errorDetails') or []) if isinstance(err, dict)],
        'warnings': [_normalize_warning(w) for w in (ext.get('warningDetails') or []) if isinstance(w, dict)],
    }


def is_restore_job(job):
    """True for a normalised restore job (operation category or operation 'Restore')."""
    return RESTORE_OPERATION.lower() in (_lower(job.get('operation_category')), _lower(job.get('operation')))


def _same_backup_instance(job, backup_instance):
    """Match a job to a backup instance given by ARM id or by name (jobs are listed per vault)."""
    if not backup_instance:
        return True
    wanted = last_segment(backup_instance).lower()
    names = {
        _lower(last_segment(job.get('backup_instance_id'))),
        _lower(job.get('backup_instance_friendly_name')),
    }
    return wanted in names


def job_matches(job, operation=None, statuses=None, backup_instance=None, datasource_id=None,
                start_time=None, end_time=None):
    """Client-side filter for a normalised job (the Jobs_List API has no $filter).

    ``operation`` matches the operation or the operation category case-insensitively; ``statuses`` is a
    list of statuses (case-insensitive); ``start_time``/``end_time`` (aware datetimes) bound the job's start.
    """
    if operation and _lower(operation) not in (_lower(job.get('operation')), _lower(job.get('operation_category'))):
        return False
    if statuses and _lower(job.get('status')) not in {_lower(s) for s in statuses}:
        return False
    if not _same_backup_instance(job, backup_instance):
        return False
    if datasource_id and normalize_destination(job.get('datasource_id')) != normalize_destination(datasource_id):
        return False
    if start_time is not None or end_time is not None:
        started = parse_service_time(job.get('start_time'))
        if started is None:
            return False
        if start_time is not None and started < start_time:
            return False
        if end_time is not None and started > end_time:
            return False
    return True


def iter_jobs(raw_jobs, **filters):
    """Normalise raw jobs lazily and yield those that pass ``job_matches(**filters)``."""
    for raw in raw_jobs:
        job = normalize_job(raw)
        if job_matches(job, **filters):
            yield job


RestoreJobs = namedtuple('RestoreJobs', ['same_point', 'same_target'])


def _later(job, best):
    """True when `job` started after `best` (a job without a start time never beats one with)."""
    if best is None:
        return True
    started, best_started = parse_service_time(job.get('start_time')), parse_service_time(best.get('start_time'))
    return started is not None and (best_started is None or started > best_started)


def scan_restore_jobs(jobs_iter, backup_instance_id, recovery_point_id, target_id):
    """One pass over the vault's jobs (streamed, one kept per answer) for a restore about to start.

    ``same_point``: the restore job a previous run started for the same backup instance, recovery point and
    target; only jobs that are running (any non-terminal or unknown status) or completed successfully count, a
    failed or cancelled restore does not stop a new one. ``same_target``: the last restore of the same backup
    instance to the same target that completed successfully, whatever its recovery point (what a database that
    exists holds when it was restored by us). When several match, the one that started last wins. Normalised
    jobs or None.
    """
    wanted_rp = _lower(recovery_point_id)
    wanted_target = normalize_destination(target_id)
    same_point = same_target = None
    for item in jobs_iter:
        job = item if 'job_id' in item and 'is_terminal' in item else normalize_job(item)
        if not is_restore_job(job) or _lower(job.get('status')) in _NOT_REUSABLE_STATUSES:
            continue
        if not _same_backup_instance(job, backup_instance_id):
            continue
        if normalize_destination(job.get('recovery_destination')) != wanted_target:
            continue
        if _lower(job['source_recovery_point'].get('id')) == wanted_rp and _later(job, same_point):
            same_point = job
        if job['succeeded'] and _later(job, same_target):
            same_target = job
    return RestoreJobs(same_point, same_target)


def find_restore_job(jobs_iter, backup_instance_id, recovery_point_id, target_id):
    """The restore job a previous run started for the same backup instance, recovery point and target (or None);
    see scan_restore_jobs."""
    return scan_restore_jobs(jobs_iter, backup_instance_id, recovery_point_id, target_id).same_point

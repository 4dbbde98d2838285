# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""Waiting, always against a monotonic deadline: long-running ARM operations and backup vault jobs."""

from __future__ import annotations

import math
import time
from urllib.parse import unquote, urlsplit

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._arm_client import display_url
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import (
    JOB_WAIT_TIMED_OUT, OPERATION_TIMED_OUT, DataProtectionError, error_from_payload, response_ids,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._jobs import is_terminal
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._retry import parse_retry_after

DEFAULT_POLL_INTERVAL = 5
# A job can be invisible for a moment after the operation that started it reports its id.
JOB_NOT_FOUND_GRACE = 3
_FAILED = ('failed', 'canceled', 'cancelled')


class Deadline:
    """A point in time on a monotonic clock; `seconds=None` never expires."""

    def __init__(self, seconds, clock=time.monotonic, sleep=time.sleep):
        self.seconds = seconds
        self._clock = clock
        self._sleep = sleep
        self._end = None if seconds is None else clock() + max(0, seconds)

    def remaining(self):
        return math.inf if self._end is None else max(0.0, self._end - self._clock())

    def expired(self):
        return self.remaining() <= 0

    def sleep(self, seconds):
        """Sleep `seconds`, but never past the deadline; returns the time slept."""
        wait = min(max(0.0, seconds), self.remaining())
        if wait > 0:
            self._sleep(wait)
        return wait


def last_segment(url_or_id):
    """The last path segment of a URL or ARM id (query dropped, unquoted)."""
    return unquote(urlsplit(str(url_or_id or '')).path.rstrip('/').rsplit('/', 1)[-1]) or None


def _job_guid(body):
    body = body if isinstance(body, dict) else {}
    value = body.get('jobId') or (body.get('properties') or {}).get('jobId')
    return last_segment(value) if value else None  # a GUID, or the last segment of a job ARM id


def _result(operation_id, body):
    return {'status': 'Succeeded', 'operation_id': operation_id, 'job_id': _job_guid(body), 'result': body or {}}


# ---------------------------------------------------------------- operations

def wait_for_operation(client, response, deadline, what, poll_interval=None, result_needed=True):
    """Follow the response of a write (POST/PUT) to its end; see docs/dev/architecture.md.

    Returns {'status': 'Succeeded', 'operation_id', 'job_id' (GUID or None), 'result' (final body)}.
    `result_needed=False`: only the outcome matters (validateRestore), so the Location answer is not read.
    """
    if response.status_code != 202:
        return _result(None, client.json_or_raise(response, what))  # synchronous answer (or an error)
    status_url = response.headers.get('Azure-AsyncOperation')
    location = response.headers.get('Location')
    poll_url = status_url or location
    if not poll_url:
        raise DataProtectionError(what, 'the service accepted the request (HTTP 202) but gave no '
                                  'Azure-AsyncOperation or Location header to follow.', code='InvalidResponse',
                                  status=202, **response_ids(response))
    poller = _Poller(client, deadline, what, poll_url, poll_interval or DEFAULT_POLL_INTERVAL)
    poller.pause(response)
    if status_url:
        return _result(poller.operation_id, poller.follow_status(location, result_needed))
    return _result(poller.operation_id, poller.follow_location())


class _Poller:
    """The state of one operation wait: where to poll, how long, and what to say on timeout."""

    def __init__(self, client, deadline, what, url, interval):
        self.client, self.deadline, self.what = client, deadline, what
        self.url, self.interval = url, interval
        self.operation_id = last_segment(url)

    def pause(self, response):
        """Wait Retry-After (else the poll interval) before the next poll; raise when the deadline has passed."""
        if self.deadline.expired():
            raise self._timed_out()
        wait = parse_retry_after(response.headers)
        self.deadline.sleep(self.interval if wait is None else wait)

    def follow_status(self, location, result_needed=True):
        while True:
            response = self.client.get(self.url)
            body = self.client.json_or_raise(response, self.what)
            state = str(body.get('status') or '').lower()  # the service sends 'Inprogress'
            if state == 'succeeded':
                return self._final_body(location if result_needed else None, body)
            if state in _FAILED:
                raise self._failed(body, response)
            self.pause(response)

    def follow_location(self):
        while True:
            response = self.client.get(self.url)
            if response.status_code != 202:
                return self.client.json_or_raise(response, self.what)
            self.pause(response)

    def _final_body(self, location, status_body):
        # The status body of a restore carries properties.jobId, which is all its Location answer (200) would
        # carry: read the Location only when the status body lacks it (one request less per operation).
        fallback = status_body.get('properties') or {}
        if not location or fallback.get('jobId'):
            return fallback
        response = self.client.get(location)
        if response.status_code in (202, 204) or (response.status_code == 200 and not response.content):
            return fallback
        return self.client.json_or_raise(response, self.what) or fallback

    def _failed(self, body, response):
        error = body.get('error')
        extra = dict(response_ids(response), operation_id=self.operation_id, job_id=_job_guid(body))
        if isinstance(error, dict) and any(error.get(k) for k in ('code', 'message', 'additionalInfo')):
            return error_from_payload(self.what, error, **extra)
        canceled = str(body.get('status')).lower() != 'failed'
        return DataProtectionError(self.what, f"the operation ended with status {body.get('status')} and no "
                                   'error details.', code='OperationCanceled' if canceled else 'OperationFailed',
                                   **extra)

    def _timed_out(self):
        return DataProtectionError(
            self.what, f'the operation {self.operation_id} did not finish within the wait time; it may still '
            'complete.', code=OPERATION_TIMED_OUT, operation_id=self.operation_id, recommended_actions=[
                f'Its status can be read at {display_url(self.url)}. Raise wait_timeout to wait longer; running '
                'pg_restore again is safe (it finds a restore it already started), and '
                'azure_backup.dataprotection.dataprotection_job_info shows the jobs.'])


# ---------------------------------------------------------------- jobs

def job_progress(job, job_id=None):
    """{'job_id', 'status', 'sub_task', 'sub_task_status', 'sub_task_progress'}: what on_progress receives (the
    first unfinished subtask; its taskProgress as the service reports it, or None)."""
    properties = (job or {}).get('properties') or {}
    sub_tasks = [t for t in (properties.get('extendedInfo') or {}).get('subTasks') or [] if isinstance(t, dict)]
    current = next((t for t in sub_tasks if not is_terminal(t.get('taskStatus'))), sub_tasks[-1] if sub_tasks else {})
    return {'job_id': job_id or (job or {}).get('name'), 'status': properties.get('status'),
            'sub_task': current.get('taskName'), 'sub_task_status': current.get('taskStatus'),
            'sub_task_progress': current.get('taskProgress')}


def wait_for_job(client, job_url, deadline, poll_interval=10, on_progress=None, every_poll=False, fetch=None):
    """Poll a backup vault job until it ends; returns the raw job (failed and cancelled ones too).

    on_progress(job_progress(...)) is called when the progress changed, or at every poll with `every_poll`.
    `fetch`: a callable returning the job's response, for jobs not read with a GET of job_url (cross-region restore).
    """
    guid = last_segment(job_url)
    what = f'Wait for job {guid}'
    last, misses = None, 0
    while True:
        response = fetch() if fetch else client.get(job_url)
        if response.status_code == 404 and misses < JOB_NOT_FOUND_GRACE:
            misses += 1
        else:
            job = client.json_or_raise(response, what)
            progress = job_progress(job, guid)
            if on_progress is not None and (every_poll or progress != last):
                on_progress(progress)
            last = progress
            if is_terminal(progress['status']):
                return job
        if deadline.expired():
            raise DataProtectionError(
                what, f"the job is still {(last or {}).get('status') or 'not visible'} after the wait time; it "
                'goes on in the service.', code=JOB_WAIT_TIMED_OUT, job_id=guid, recommended_actions=[
                    'Follow it with azure_backup.dataprotection.dataprotection_job_info (job_id), or raise '
                    'wait_timeout.'])
        deadline.sleep(poll_interval)

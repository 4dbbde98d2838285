# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Waiting options: for a job (DOCUMENTATION) and for a long-running operation only (OPERATION)."""

from __future__ import annotations


class ModuleDocFragment:

    # Modules that start a job: pg_restore.
    DOCUMENTATION = r'''
options:
  wait:
    description:
      - Wait until the job ends. A job that ends V(Failed) or V(Cancelled) fails the task with the job's error
        code, message and recommended action.
      - When V(false), the module returns as soon as the service has accepted the request and given the job id;
        follow the job with M(azure_backup.dataprotection.dataprotection_job_info).
    type: bool
    default: false
  wait_timeout:
    description:
      - Longest time in seconds the module waits in all, for the service to accept the request and, with
        O(wait=true), for the job to end.
      - On timeout the task fails and returns RV(job_id) when it is known; the job goes on in the service.
        Follow it with M(azure_backup.dataprotection.dataprotection_job_info), or run the task again (it finds
        the job it started and waits on it).
    type: int
    default: 3600
  poll_interval:
    description:
      - Seconds between two reads of the job while waiting, and between two polls of the operation when the
        service sends no C(Retry-After) header (it normally does, and it is honoured).
    type: int
    default: 15
'''

    # Modules that only wait for a long-running operation: pg_restore_validate.
    OPERATION = r'''
options:
  wait_timeout:
    description:
      - Longest time in seconds to wait for the service to finish the operation. The service's C(Retry-After)
        header sets the pace of the polls.
      - On timeout the task fails with the operation id; the operation may still finish in the service.
    type: int
    default: 600
'''

# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cloud_environment pointing at a local port nothing listens on (a typo in the port, a service that is down):
the module fails at its first request, with a message naming the URL that refused, and retries nothing (issue 15,
item 5: it took 92 s, retries of the sign-in stacked on azure-identity's own)."""

from __future__ import annotations

import socket

VAULT = {'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG'}


def closed_port():
    with socket.socket() as probe:  # bound, then closed: nothing listens there
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def test_a_refusing_cloud_environment_fails_at_once_naming_the_url(emulator, run_module):
    base = 'https://127.0.0.1:%d' % closed_port()
    result, record = run_module('pg_recovery_point_info', dict(VAULT, backup_instance_name='any'), verbosity=2,
                                env={'AZURE_CLOUD_ENVIRONMENT': base, 'AZURE_BACKUP_TOKEN_CACHE': 'false'},
                                emulator=emulator)
    assert record['status'] == 'failed', result.tail()
    msg = record['result']['msg']
    assert msg.startswith('Could not read cloud metadata from %s/metadata/endpoints' % base), msg
    assert 'Connection refused.' in msg and 'attempts' not in msg, msg
    assert 'retrying' not in result.output  # one attempt: no retry warning at all

# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fake Microsoft.DataProtection for the restore modules' tests, at the HTTP transport (`responses`).

The payloads are the JSON fixtures next to this file (shapes of the live service, reference §3); the module under
test runs for real: its argspec, DataProtectionModule, ArmClient (requests), the LRO and job pollers. Only the
cloud, the credential, the clock and sleeping are fakes.
"""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
import responses

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _auth, _module
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._lro import Deadline

from ansible_collections.azure_backup.dataprotection.tests.unit.conftest import (
    SENTINEL_SECRET, SENTINEL_TOKEN, SUBSCRIPTION, TEST_CLOUD, FakeClock, FakeCredential, run_main,
)

FIXTURES = Path(__file__).parent / 'fixtures'
MAX_SLEEPS = 500
ARM = TEST_CLOUD.resource_manager
SUB = SUBSCRIPTION
API = '2024-04-01'
VAULT_PATH = f'/subscriptions/{SUB}/resourceGroups/testBkpVaultRG/providers/Microsoft.DataProtection/backupVaults/TestBkpVault'
BI_NAME = 'testpostgresql-empdb11-957d23b1-c679-4c94-ade6-c4d34635e149'
BI_PATH = VAULT_PATH + '/backupInstances/' + BI_NAME
FLEX_BI_NAME = 'pgflex01-8a7c2e51-40f1-4a33-9c1b-2f0e9d6b5c77'
FLEX_BI_PATH = VAULT_PATH + '/backupInstances/' + FLEX_BI_NAME
SOURCE_SERVER = f'/subscriptions/{SUB}/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/servers/testpostgresql'
SOURCE_DB = SOURCE_SERVER + '/databases/empdb11'
FLEX_SERVER = f'/subscriptions/{SUB}/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/flexibleServers/pgflex01'
TARGET_SERVER = f'/subscriptions/{SUB}/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver'
TARGET_DB = TARGET_SERVER + '/databases/emprestored21'
SECRET_URI = 'https://kv-restore.vault.azure.net/secrets/targetossserver-conn'
CONTAINER_URL = 'https://testossstorageaccount.blob.core.windows.net/testcontainerrestore'
RP_VAULT = 'eb006fde78cb47198be5a320fbe45e9b'
RP_ARCHIVE = '9a3f51d2c0e84b7f8e1d6c5b4a392817'
JOB_ID = 'c4bd49a1-0645-4eec-b207-feb818962852'
OP_ID = 'YWJjMGRmMzQtNTY1NS00MGMyLTg4YmUtMTUyZDE3ZjdiNzMyOzY4NDNmZWZkLWU4ZTMtNDM4MC04ZTJhLWUzMTNjMmNhNjI1NA=='
OP_STATUS_URL = f'{ARM}/subscriptions/{SUB}/providers/Microsoft.DataProtection/locations/westus/operationStatus/{OP_ID}?api-version={API}'
OP_RESULT_URL = f'{ARM}/subscriptions/{SUB}/providers/Microsoft.DataProtection/locations/westus/operationResults/{OP_ID}?api-version={API}'

# The auth options every test passes: explicit, so no ~/.azure file or CLI profile is read; `secret` is a sentinel.
AUTH = {'subscription_id': SUB, 'client_id': '0b5e4f3a-1c2d-4e6f-8a9b-0c1d2e3f4a5b', 'secret': SENTINEL_SECRET,
        'tenant': '83abe5cd-bcc3-441a-bd86-e6a75360cecc', 'auth_source': 'env'}
VAULT_ARGS = dict(AUTH, vault_name='TestBkpVault', resource_group='testBkpVaultRG')


def load(name):
    with open(FIXTURES / (name + '.json'), encoding='utf-8') as handle:
        return json.load(handle)


def arm_error(code, message, status):
    return {'error': {'code': code, 'message': message}}


class FakeArm:
    """Registers the fake service's answers on the `responses` mock and runs modules against it."""

    def __init__(self, rsps, monkeypatch):
        self.rsps = rsps
        self._listings = {}
        self.clock = FakeClock()
        self.warnings = []
        monkeypatch.setattr(_module.DataProtectionModule, 'warn',
                            lambda _self, message, **kwargs: self.warnings.append(message))
        self.credential = FakeCredential()
        monkeypatch.setattr(_auth, 'get_cloud', lambda *a, **k: TEST_CLOUD)
        monkeypatch.setattr(_auth, 'build_credential', lambda *a, **k: self.credential)
        for variables in _auth.ENV_VARS.values():
            for name in variables:
                monkeypatch.delenv(name, raising=False)
        clock = self.clock

        def sleep(seconds):
            # A wait loop that never ends would otherwise record calls until memory runs out.
            assert len(clock.sleeps) < MAX_SLEEPS, 'runaway wait loop: %d sleeps' % len(clock.sleeps)
            clock.sleep(seconds)

        monkeypatch.setattr(_module.DataProtectionModule, 'deadline',
                            staticmethod(lambda seconds: Deadline(seconds, clock=clock, sleep=sleep)))
        monkeypatch.setattr(time, 'sleep', sleep)  # ArmClient's retry pauses

    # ------------------------------------------------------------ running a module

    @staticmethod
    def run(module, args, check_mode=False):
        """(result, failed) of module.main() with `args`."""
        return run_main(module.main, args, check_mode=check_mode)

    # ------------------------------------------------------------ what was sent

    def calls(self, method=None, suffix=None):
        """The recorded calls, optionally only those of `method` whose URL path ends with `suffix`."""
        found = []
        for call in self.rsps.calls:
            path = urlsplit(call.request.url).path
            if (method is None or call.request.method == method) and (suffix is None or path.endswith(suffix)):
                found.append(call)
        return found

    def posted(self, suffix):
        return [json.loads(call.request.body) for call in self.calls('POST', suffix)]

    # ------------------------------------------------------------ answers

    def get(self, path, body, status=200, headers=None):
        self.rsps.add(responses.GET, ARM + path, json=body, status=status, headers=headers or {})

    def get_404(self, path, code='ResourceNotFound', message='The resource was not found.'):
        self.rsps.add(responses.GET, ARM + path, json=arm_error(code, message, 404), status=404,
                      headers={'x-ms-request-id': 'req-404', 'x-ms-correlation-request-id': 'corr-404'})

    def vault(self):
        self.get(VAULT_PATH, load('backup_vault'))

    def backup_instance(self, flexible=False):
        if flexible:
            self.get(FLEX_BI_PATH, load('backup_instance_flexible'))
        else:
            self.get(BI_PATH, load('backup_instance_single'))

    def recovery_point(self, archive=False, bi_path=BI_PATH):
        body = load('recovery_point_archive' if archive else 'recovery_point_vault')
        self.get('%s/recoveryPoints/%s' % (bi_path, body['name']), body)
        return body

    def paged(self, path, pages, forget_calls=False):
        """GET `path` answers with `pages`: a list of pages (lists of items), or (callable index -> items, count).

        Each call adds one more listing: the first listing answers the first time the module reads the list, the
        next one the second time, and so on (the module re-reads the jobs after a lost POST). `forget_calls` drops
        the recorded calls as pages are served (`responses` keeps every answer otherwise), for tests that measure
        the memory the module itself holds. Returns a dict: `first_query` (the query of the latest first page) and
        `pages` (pages served).
        """
        state = self._listings.get(path)
        if state is None:
            state = self._listings[path] = {'listings': [], 'current': -1, 'first_query': None, 'pages': 0}
            self._register_listing(path, state)
        state['listings'].append(pages)
        state['forget_calls'] = forget_calls
        return state

    def _register_listing(self, path, state):
        def callback(request):
            state['pages'] += 1
            if state['forget_calls']:  # both the mock's and this registered response's own call lists
                self.rsps.calls.reset()
                state['registered'].calls.reset()
            query = parse_qs(urlsplit(request.url).query)
            index = int(query.get('$skipToken', ['0'])[0])
            if index == 0:
                state['current'] += 1
                state['first_query'] = query
            assert state['current'] < len(state['listings']), 'the module listed %s more often than expected' % path
            pages = state['listings'][state['current']]
            count = len(pages) if isinstance(pages, list) else pages[1]
            items = pages[index] if isinstance(pages, list) else pages[0](index)
            text = items if isinstance(items, str) else json.dumps(items)  # JSON text is cheap for big listings
            next_link = ''
            if index + 1 < count:
                next_link = ', "nextLink": %s' % json.dumps(f'{ARM}{path}?api-version={API}&$skipToken={index + 1}')
            return 200, {'Content-Type': 'application/json'}, '{"value": %s%s}' % (text, next_link)

        self.rsps.add_callback(responses.GET, re.compile(re.escape(ARM + path) + r'(\?.*)?$'), callback=callback)
        state['registered'] = self.rsps.registered()[-1]

    def backup_instances(self, pages):
        return self.paged(VAULT_PATH + '/backupInstances', pages)

    def jobs(self, pages):
        return self.paged(VAULT_PATH + '/backupJobs', pages)

    def lro(self, post_path, final_status, polls=1, location_body=None, retry_after='10'):
        """POST -> 202 with the live headers, `polls` x Inprogress, then `final_status`; Location -> location_body."""
        self.rsps.add(responses.POST, ARM + post_path, status=202, body='', headers={
            'Azure-AsyncOperation': OP_STATUS_URL, 'Location': OP_RESULT_URL, 'Retry-After': retry_after,
            'x-ms-ratelimit-remaining-subscription-writes': '1199'})
        for dummy in range(polls):
            self.rsps.add(responses.GET, OP_STATUS_URL, json=load('operation_inprogress'),
                          headers={'Retry-After': retry_after})
        self.rsps.add(responses.GET, OP_STATUS_URL, json=final_status)
        # The Location is read only when the Succeeded status lacks a job id and the caller needs the result.
        needs_location = not (post_path.endswith('/validateRestore') or (final_status.get('properties') or {}).get('jobId'))
        if final_status.get('status') == 'Succeeded' and needs_location:
            if location_body is None:
                self.rsps.add(responses.GET, OP_RESULT_URL, status=204, body='')
            else:
                self.rsps.add(responses.GET, OP_RESULT_URL, json=location_body)

    def post_error(self, post_path, exc):
        self.rsps.add(responses.POST, ARM + post_path, body=exc)

    def job(self, body, status=200):
        self.rsps.add(responses.GET, f'{ARM}{VAULT_PATH}/backupJobs/{JOB_ID}', json=body, status=status)


def assert_no_leak(*results):
    text = json.dumps(results, default=str)
    assert SENTINEL_SECRET not in text
    assert SENTINEL_TOKEN not in text


def outcome_unknown_error():
    """What requests raises when the connection dropped after the request was sent."""
    return requests.exceptions.ConnectionError(
        'Connection aborted.', requests.packages.urllib3.exceptions.ProtocolError('Connection aborted.'))


def deep(obj):
    return copy.deepcopy(obj)

# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pg_recovery_point_info on the emulator: every selection (all, one by id, latest, earliest, before, time window,
datastore), a point moved to the archive tier shows archive_only, by backup instance name and by datasource id;
the same answers in check mode, in a real run and in a re-run, never changed, nothing written.

Works on the flexible server's backup instance, so that archiving one of its points does not change what the
single server's "latest" point is for the other tests sharing the emulator.
"""

from __future__ import annotations

import datetime

import pytest

VAULT = {'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG'}


def _time(value):
    """A recovery point time ('2025-01-30T22:01:16.2569170Z', 7 digits) as an aware datetime."""
    head, frac = (value.rstrip('Z').split('.', 1) + [''])[:2]
    return datetime.datetime.fromisoformat(head).replace(
        microsecond=int((frac + '000000')[:6]), tzinfo=datetime.timezone.utc)


def _iso(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


@pytest.fixture(scope='module')
def points(emulator):
    """The flexible server's points: the world's initial one (a day old), an archived one, and the latest one."""
    emulator.wait_idle()
    archived = emulator.backup('sourceflexserver')
    latest = emulator.backup('sourceflexserver')
    moved = emulator.archive('sourceflexserver', archived['name'])
    assert [d['type'] for d in moved['properties']['recoveryPointDataStoresDetails']] == ['ArchiveStore']
    raw = emulator.recovery_points('sourceflexserver')
    by_time = sorted(raw, key=lambda p: _time(p['properties']['recoveryPointTime']))
    assert by_time[-1]['name'] == latest['name'], 'the new backup is not the latest point'
    # other tests may have added points before these: expectations come from the real list
    vault_before_archived = [p for p in by_time if p['name'] != moved['name']
                             and _time(p['properties']['recoveryPointTime']) <= _time(
                                 moved['properties']['recoveryPointTime'])
                             and 'VaultStore' in [d['type'] for d in p['properties']['recoveryPointDataStoresDetails']]]
    return {'bi': emulator.backup_instance('sourceflexserver'), 'earliest': by_time[0], 'archived': moved,
            'latest': latest, 'all': raw, 'vault_before_archived': vault_before_archived[-1]}


def _tasks(points, emulator):
    bi = points['bi']
    base = dict(VAULT, backup_instance_name=bi['name'])
    archived_time = _time(points['archived']['properties']['recoveryPointTime'])
    earliest_time = _time(points['earliest']['properties']['recoveryPointTime'])
    tasks = [
        ('all', dict(base)),
        ('all by datasource id', dict(VAULT, datasource_id=emulator.server_id('sourceflexserver', 'sourcerg',
                                                                              'flexibleServers'), select='all')),
        ('latest', dict(base, select='latest')),
        ('earliest', dict(base, select='earliest')),
        ('before the archived point', dict(base, before=_iso(archived_time))),
        ('in the archive tier', dict(base, datastore='ArchiveStore')),
        ('vault tier before the archived point', dict(base, datastore='VaultStore', before=_iso(archived_time))),
        ('one by id', dict(base, recovery_point_id=points['archived']['name'])),
        ('window from the archived point', dict(base, start_time=_iso(archived_time))),
    ]
    result = [{'name': name, 'module': 'pg_recovery_point_info', 'params': params} for name, params in tasks]
    result += [
        {'name': 'nothing that old', 'module': 'pg_recovery_point_info', 'ignore_errors': True,
         'params': dict(base, before=_iso(earliest_time - datetime.timedelta(days=30)))},
        {'name': 'unknown point', 'module': 'pg_recovery_point_info', 'ignore_errors': True,
         'params': dict(base, recovery_point_id='0123456789abcdef0123456789abcdef')},
    ]
    return result


def _ids(record):
    return [p['recovery_point_id'] for p in record['result']['recovery_points']]


SUBSET = ('all', 'one by id')


def _answers(result, names):
    return {name: (result.task(name)['result']['recovery_points'], result.task(name)['result'].get('recovery_point'))
            for name in names}


def test_check_mode_then_real_run_then_rerun(emulator, run_tasks, points):
    """One play, in order: a subset in check mode (task keyword check_mode), every selection, the subset again."""
    tasks = _tasks(points, emulator)
    subset = [task for task in tasks if task['name'] in SUBSET]
    play = ([dict(task, name='check: ' + task['name'], check_mode=True) for task in subset] + tasks
            + [dict(task, name='rerun: ' + task['name']) for task in subset])
    writes_before = emulator.writes()

    result = run_tasks(play).assert_ok()
    assert emulator.writes() == writes_before, 'an info module wrote something'
    assert result.changed == 0 and all(r['result']['changed'] is False for r in result.results)
    assert [r['task'] for r in result.failed] == []
    _check_selections(result, points)
    # check mode reads as usual (info modules run in check mode) and a re-run gives the same answers
    for name in SUBSET:
        assert _answers(result, ['check: ' + name])['check: ' + name] == _answers(result, [name])[name] \
            == _answers(result, ['rerun: ' + name])['rerun: ' + name]


def _check_selections(result, points):
    earliest, archived, latest = (points[k]['name'] for k in ('earliest', 'archived', 'latest'))
    every = {p['name'] for p in points['all']}

    listed = result.task('all')
    assert set(_ids(listed)) == every and len(_ids(listed)) == len(every)
    assert not listed['result'].get('recovery_point')
    assert listed['result']['backup_instance']['name'] == points['bi']['name']
    assert listed['result']['backup_instance']['datasource_type'] == 'Microsoft.DBforPostgreSQL/flexibleServers'
    assert set(_ids(result.task('all by datasource id'))) == every
    assert result.task('all by datasource id')['result']['backup_instance']['name'] == points['bi']['name']

    flags = {p['recovery_point_id']: p for p in listed['result']['recovery_points']}
    assert flags[archived]['archive_only'] is True and flags[archived]['datastores'] == ['ArchiveStore']
    assert flags[latest]['archive_only'] is False and 'VaultStore' in flags[latest]['datastores']

    assert result.task('latest')['result']['recovery_point']['recovery_point_id'] == latest
    assert _ids(result.task('latest')) == [latest]
    assert result.task('earliest')['result']['recovery_point']['recovery_point_id'] == earliest
    assert result.task('before the archived point')['result']['recovery_point']['recovery_point_id'] == archived

    archived_tier = result.task('in the archive tier')['result']['recovery_points']
    assert [p['recovery_point_id'] for p in archived_tier] == [archived] and archived_tier[0]['archive_only'] is True
    # in the vault tier the archived point is not a candidate: the latest vault point before it is chosen
    assert result.task('vault tier before the archived point')['result']['recovery_point'][
        'recovery_point_id'] == points['vault_before_archived']['name'] != archived

    one = result.task('one by id')['result']['recovery_point']
    assert one['recovery_point_id'] == archived and one['archive_only'] is True and one['datastores'] == ['ArchiveStore']

    assert set(_ids(result.task('window from the archived point'))) == {archived, latest}

    too_old = result.task('nothing that old')
    assert too_old['status'] == 'ignored'
    assert earliest in too_old['result']['msg'], too_old['result']['msg']
    unknown = result.task('unknown point')
    assert unknown['status'] == 'ignored'
    assert '0123456789abcdef0123456789abcdef' in unknown['result']['msg']

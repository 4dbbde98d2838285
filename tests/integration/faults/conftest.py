# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the fault-tolerance suite (``make test-faults``), on top of ../conftest.py.

``femu`` (function) -> FaultEmulator
    The suite's own emulator (world ``granted.yml``, started once per session/xdist worker, never shared with the
    other integration tests because these tests change knobs, inject faults and restart it), prepared for one
    test: no fault, the suite's base knobs, no running job, counters reset. After the test: faults cleared, knobs
    restored, jobs waited for, and the test's figures taken (counters, overwritten databases, secrets in outputs).

``play`` (function) -> callable, as ``run_playbook`` of ../conftest.py (same arguments; verbosity defaults to 4,
    i.e. ``-vvvv``, emulator to ``femu``), plus ``play.start(...)`` for runs a test kills. Every output it produces
    is scanned for secrets when the test ends.

``figures`` (function) -> Figures: the test's contribution to the suite's counts table. The session ends with
    that table (``pytest_terminal_summary``) and fails when an invariant does not hold: restores requested ==
    restore jobs created, databases overwritten == 0, secret values in outputs and emulator logs == 0.
"""

from __future__ import annotations

import json

import pytest

from fault_helpers import (  # pylint: disable=import-error
    BASE_KNOBS, COLUMNS, FaultEmulator, Figures, Ledger, Play, stop_leftover_clusters,
)


def _ledger(config):
    ledger = getattr(config, '_fault_ledger', None)
    if ledger is None:
        ledger = config._fault_ledger = Ledger()  # pylint: disable=protected-access
    return ledger


def pytest_configure(config):
    _ledger(config)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):  # xdist controller: a worker's rows
    del error
    rows = getattr(node, 'workeroutput', {}).get('fault_ledger')
    if rows:
        for row in json.loads(rows):
            _ledger(node.config).add(row)


def pytest_sessionfinish(session, exitstatus):
    ledger = _ledger(session.config)
    workeroutput = getattr(session.config, 'workeroutput', None)
    if workeroutput is not None:  # an xdist worker: hand the rows to the controller
        workeroutput['fault_ledger'] = json.dumps(ledger.rows)
        return
    if ledger.rows and ledger.violations() and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    del exitstatus
    ledger = _ledger(config)
    if not ledger.rows or getattr(config, 'workeroutput', None) is not None:
        return
    write = terminalreporter.write_line
    terminalreporter.section('fault suite: counts')
    width = max(len(column[1]) for column in COLUMNS)
    totals = ledger.totals()
    for key, label in COLUMNS:
        write('  ' + label.ljust(width) + '  %6d' % totals[key])
    write('  (%d tests; every output captured at -vvvv and every emulator log scanned)' % len(ledger.rows))
    for row in ledger.rows:
        for where, what in row['hits']:
            write('  SECRET: %s in %s (%s)' % (what, where, row['nodeid']))
    problems = ledger.violations()
    write('  invariants: ' + ('OK (requested == created, 0 overwritten, 0 secrets)' if not problems
                              else 'VIOLATED: ' + '; '.join(problems)))


@pytest.fixture(scope='session')
def fault_emulator(emulator_session_factory):
    emu = emulator_session_factory('granted', knobs={k: v for k, v in BASE_KNOBS.items() if k != 'throttle'})
    yield emu
    emu.stop()
    leftovers = stop_leftover_clusters(emu.state)
    assert not leftovers, 'PostgreSQL clusters of %s were still running (killed): %s' % (emu.state, leftovers)


@pytest.fixture()
def figures(request):
    fig = Figures(request.node.nodeid)
    yield fig
    _ledger(request.config).add(fig.as_dict())


@pytest.fixture()
def femu(fault_emulator, figures):
    emu = fault_emulator
    if not emu.running():
        emu.start()
    emu.clear_faults()
    emu.set_knobs(**BASE_KNOBS)
    emu.wait_idle(timeout=180)
    emu.reset_counters()
    wrapped = FaultEmulator(emu, figures)
    yield wrapped
    if not emu.running():
        emu.start()
    emu.clear_faults()
    emu.set_knobs(**BASE_KNOBS)
    emu.wait_idle(timeout=180)
    figures.add_counters(emu.counters())
    overwritten = wrapped.check_watched()
    figures.scan('emulator log', wrapped.log_since_start(), wrapped.secrets())
    assert not overwritten, 'databases replaced by a restore: %s' % overwritten
    assert not figures.hits, 'secrets in outputs: %s' % figures.hits
    assert figures.values['restores_requested'] == figures.values['restore_jobs_created'], (
        'restores requested %(restores_requested)d, restore jobs created %(restore_jobs_created)d' % figures.values)


@pytest.fixture()
def play(run_playbook, femu, figures):
    runner = Play(run_playbook, femu)
    yield runner
    runner.close()
    secrets = femu.secrets()
    for index, result in enumerate(runner.results):
        figures.scan('run %d output' % (index + 1), result.output, secrets)
        records = json.dumps(result.results) + json.dumps(result.stats)
        figures.scan('run %d task results' % (index + 1), records, secrets)

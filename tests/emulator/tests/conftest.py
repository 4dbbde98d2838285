"""Fixtures: real emulators (with real PostgreSQL clusters) started by the CLI on a free port in a
temp state dir, stopped by pid at the end even when tests fail."""
import os
import shutil

import pytest

from dpemu_helpers import DEMO, GRANTED, start_emulator


@pytest.fixture(scope="session", autouse=True)
def _ca_env():
    # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override Session.verify; tests pass verify= per
    # call and azure clients connection_verify=, so unset them for the session.
    old = {k: os.environ.pop(k) for k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE") if k in os.environ}
    yield
    os.environ.update(old)


@pytest.fixture(scope="session")
def emu():
    """The granted world (restore permissions and connection secrets in place)."""
    e = start_emulator(GRANTED)
    yield e
    e.stop()
    shutil.rmtree(e.state, ignore_errors=True)


@pytest.fixture(scope="session")
def emu_demo():
    """The demo world: the vault identity lacks its restore permissions."""
    e = start_emulator(DEMO)
    yield e
    e.stop()
    shutil.rmtree(e.state, ignore_errors=True)


@pytest.fixture(autouse=True)
def _clean_faults(request):
    yield
    for name in ("emu", "emu_demo"):
        if name in request.fixturenames:
            e = request.getfixturevalue(name)
            e.control("DELETE", "/faults")

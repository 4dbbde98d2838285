# Stand-in for ansible-test's get-pip bootstrap script (see docs: reference toolchain notes, "ansible-test").
#
# ansible-test bootstraps pip in every venv it creates by downloading
# https://ci-files.testing.ansible.com/ansible-test/get-pip-<ver>.py unless
# ~/.ansible/test/cache/get_pip_<ver>.py exists. That host is not reachable in CI, so
# scripts/bootstrap.sh copies this file there. ansible-test runs it as:
#   <venv>/bin/python quiet_pip.py --disable-pip-version-check pip==<ver> --no-setuptools --no-wheel
# It installs the pip bundled with Python (no network), then the requested pip from the
# package index (pip.conf applies: ansible-test passes only HOME, PATH and LC_ALL).
# ensurepip runs as a subprocess on purpose: in-process it sets PIP_CONFIG_FILE=/dev/null,
# which hides pip.conf (and its cert=).
import subprocess
import sys

subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'])
ARGS = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'pip', 'install', '-q'] + ARGS)

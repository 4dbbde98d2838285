#!/usr/bin/env bash
# Development environment bootstrap, called by the Makefile.
#
#   scripts/bootstrap.sh venv VENV PYTHON
#       create VENV with PYTHON (recreate it if it is broken) and install
#       requirements.txt + tests/requirements-dev.txt (+ tests/emulator, editable, when present).
#   scripts/bootstrap.sh ansible-test-home VENV HOME_DIR
#       prepare HOME_DIR as the HOME for ansible-test: the offline get-pip shim under
#       HOME_DIR/.ansible/test/cache/get_pip_<ver>.py (<ver> read from the installed ansible-test),
#       and pip settings that ansible-test would otherwise drop (it passes only HOME, PATH and
#       LC_ALL to child processes, so PIP_* variables and a pip.conf under the real HOME are lost;
#       the system-wide /etc/pip.conf keeps working).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

die() { echo "bootstrap: $*" >&2; exit 1; }

cmd_venv() {
    local venv=$1 python=$2
    if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
        echo "bootstrap: $venv is broken, recreating it"
        rm -rf "$venv"
    fi
    if [ ! -x "$venv/bin/python" ]; then
        command -v "$python" >/dev/null || die "$python not found (set PYTHON=...)"
        "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
            || die "$python is $("$python" -V 2>&1); Python >= 3.10 is needed"
        "$python" -c 'import ensurepip, venv' 2>/dev/null \
            || die "$python has no venv/ensurepip (Debian: apt-get install python3-venv)"
        echo "bootstrap: creating $venv with $("$python" -V 2>&1)"
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip --disable-pip-version-check install -q --upgrade pip
    fi
    local pip=("$venv/bin/python" -m pip --disable-pip-version-check)
    "${pip[@]}" install -q -r "$root/requirements.txt" -r "$root/tests/requirements-dev.txt"
    if [ -f "$root/tests/emulator/pyproject.toml" ]; then
        "${pip[@]}" install -q -e "$root/tests/emulator"
    fi
    "$venv/bin/python" -c 'import ansible, ansible_test' || die "ansible-core is not importable in $venv"
}

cmd_ansible_test_home() {
    local venv=$1 home=$2
    local ver
    ver=$("$venv/bin/python" - <<'PY'
import re
try:
    from ansible_test._internal.host_configs import NativePythonConfig
    from ansible_test._internal.python_requirements import get_venv_packages
    print(get_venv_packages(NativePythonConfig(version='3'))['pip'])
except Exception:  # API moved: read the default from the source instead
    import ansible_test._internal.python_requirements as m
    print(re.search(r"pip\s*=\s*'([0-9.]+)'", open(m.__file__).read()).group(1))
PY
    ) || die "cannot tell which pip version ansible-test bootstraps"
    local cache="$home/.ansible/test/cache"
    mkdir -p "$cache"
    install -m 0644 "$here/get_pip_offline.py" "$cache/get_pip_${ver//./_}.py"

    # Carry user-level pip settings into the new HOME (the system /etc/pip.conf needs nothing).
    "$venv/bin/python" - "$home" <<'PY'
import configparser, os, sys
home = sys.argv[1]
real_home = os.path.expanduser('~')
cfg = configparser.ConfigParser()
if os.path.realpath(real_home) != os.path.realpath(home):
    cfg.read([os.path.join(real_home, '.pip', 'pip.conf'),
              os.path.join(os.environ.get('XDG_CONFIG_HOME', os.path.join(real_home, '.config')), 'pip', 'pip.conf')])
for var, key in (('PIP_INDEX_URL', 'index-url'), ('PIP_EXTRA_INDEX_URL', 'extra-index-url'),
                 ('PIP_TRUSTED_HOST', 'trusted-host'), ('PIP_CERT', 'cert'), ('PIP_CLIENT_CERT', 'client-cert')):
    if os.environ.get(var):
        if not cfg.has_section('global'):
            cfg.add_section('global')
        cfg.set('global', key, os.environ[var])
target = os.path.join(home, '.config', 'pip', 'pip.conf')
if cfg.sections():
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, 'w') as f:
        cfg.write(f)
elif os.path.exists(target):
    os.remove(target)
PY
}

case "${1:-}" in
    venv) shift; [ $# -eq 2 ] || die "usage: $0 venv VENV PYTHON"; cmd_venv "$@" ;;
    ansible-test-home) shift; [ $# -eq 2 ] || die "usage: $0 ansible-test-home VENV HOME_DIR"; cmd_ansible_test_home "$@" ;;
    *) die "usage: $0 {venv VENV PYTHON|ansible-test-home VENV HOME_DIR}" ;;
esac

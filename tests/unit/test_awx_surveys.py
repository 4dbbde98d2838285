# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The AWX/AAP survey specs of the playbooks (playbooks/surveys/<playbook>.json) match the playbooks.

Pure Python, no AWX. The playbooks are the reference; from each one this test reads:

- the extra vars it reads: every variable its Jinja templates and conditionals (when, until, assert's that) use, found
  with Jinja's own parser, less what the playbook defines itself (register,
  vars) and what Ansible provides (lookup, omit, ansible_*);
- the default of each one, from its ``default(...)`` filter (``default(omit, true)`` means none);
- the required ones: the plain ``x | default('') | length > 0`` conditions of its asserts;
- the role or module option each one is passed to, with that option's type and choices (the role's
  meta/argument_specs.yml, the module's DOCUMENTATION with its doc fragments);
- the inputs its header comment lists (``required:`` / ``optional:``).

The survey must ask exactly those variables, mark exactly those required, use the same defaults, and offer exactly
the option's choices. Its format is checked against the rules AWX applies when a survey spec is saved
(awx/api/views JobTemplateSurveySpec._validate_spec_data).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import jinja2
import pytest
import yaml
from jinja2 import nodes

COLLECTION = Path(__file__).absolute().parents[2]
PLAYBOOKS = COLLECTION / 'playbooks'
SURVEYS = PLAYBOOKS / 'surveys'
FQCN = 'azure_backup.dataprotection.'

PLAYBOOK_NAMES = sorted(p.stem for p in PLAYBOOKS.glob('*.yml'))

# What AWX accepts when a survey spec is saved.
SURVEY_KEYS = {'name', 'description', 'spec'}
QUESTION_REQUIRED_KEYS = {'question_name', 'question_description', 'variable', 'type', 'required'}
QUESTION_KEYS = QUESTION_REQUIRED_KEYS | {'default', 'choices', 'min', 'max', 'new_question'}
DEFAULT_TYPES = {
    'text': (str,), 'textarea': (str,), 'password': (str,), 'multiplechoice': (str,), 'multiselect': (str,),
    'integer': (int,), 'float': (float, int),
}
CHOICE_TYPES = {'multiplechoice', 'multiselect'}
TEXT_TYPES = {'text', 'textarea', 'password'}
BOOL_CHOICES = ['true', 'false']  # AWX has no boolean question; the playbooks read these with `| bool`
MAX_QUESTION_NAME = 40

# Names a playbook may use that are not extra vars.
ANSIBLE_NAMES = {'lookup', 'query', 'q', 'omit', 'now', 'undef', 'item', 'hostvars', 'inventory_hostname',
                 'playbook_dir'}
# Keys whose string values are bare Jinja expressions (no {{ }}).
EXPRESSION_KEYS = {'when', 'until', 'that', 'failed_when', 'changed_when'}
NO_DEFAULT = object()  # default(omit, true): the option is left out
REQUIRED_CONDITION = re.compile(r"^\s*([A-Za-z_]\w*)\s*\|\s*default\(\s*(''|\"\")\s*\)\s*\|\s*length\s*>\s*0\s*$")

_JINJA = jinja2.Environment()  # parsing only: filters and tests are not looked up


# ---------------------------------------------------------------------------------------------------------------------
# What a playbook reads


def _walk(node, key=None):
    """Yield (key, value) for every scalar of a YAML tree, with the mapping key it sits under (lists inherit it)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, key)
    else:
        yield key, node


def _templates(node):
    """The Jinja template of every templated string and conditional in a YAML tree."""
    for key, value in _walk(node):
        if not isinstance(value, str):
            continue
        if key in EXPRESSION_KEYS:
            yield '{{ (%s) }}' % value
        elif '{{' in value or '{%' in value:
            yield value


def _defined_names(plays):
    """Variables the playbook defines itself: registered results and the keys of every vars: mapping."""
    names = set()

    def visit(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == 'register' and isinstance(v, str):
                    names.add(v)
                elif k == 'vars' and isinstance(v, dict):
                    names.update(v)
                visit(v)
        elif isinstance(node, list):
            for v in node:
                visit(v)

    visit(plays)
    return names


def _tasks(plays):
    for play in plays:
        for section in ('pre_tasks', 'tasks', 'post_tasks', 'handlers'):
            for task in play.get(section) or []:
                yield from _flatten(task)


def _flatten(task):
    yield task
    for section in ('block', 'rescue', 'always'):
        for sub in task.get(section) or []:
            yield from _flatten(sub)


def _names(template):
    """Variables a template reads (what jinja2.meta.find_undeclared_variables gives, without compiling the template,
    which would need Ansible's filters): names loaded, less names the template assigns itself (for, set, macros)."""
    tree = _JINJA.parse(template)
    loaded = {n.name for n in tree.find_all(nodes.Name) if n.ctx == 'load'}
    return loaded - {n.name for n in tree.find_all(nodes.Name) if n.ctx in ('store', 'param')}, tree


def _literal(node):
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.Name) and node.name == 'omit':
        return NO_DEFAULT
    raise AssertionError(f'unsupported default() argument {node!r}: extend test_awx_surveys._literal')


class Playbook:
    """The inputs of one playbook, read from its YAML."""

    def __init__(self, name, path=None):
        self.name = name
        self.path = path or PLAYBOOKS / f'{name}.yml'
        self.text = self.path.read_text(encoding='utf-8')
        self.plays = yaml.safe_load(self.text)
        self.tasks = list(_tasks(self.plays))
        defined = _defined_names(self.plays)
        used = set()
        defaults = {}
        for template in _templates(self.plays):
            names, tree = _names(template)
            used |= names
            for flt in tree.find_all(nodes.Filter):
                if flt.name == 'default' and isinstance(flt.node, nodes.Name):
                    value = _literal(flt.args[0]) if flt.args else ''
                    defaults.setdefault(flt.node.name, []).append(value)
        self.extra_vars = {n for n in used - defined - ANSIBLE_NAMES if not n.startswith('ansible_')}
        self.defaults = defaults

    def default(self, var):
        """The playbook's default of an extra var: a literal, or NO_DEFAULT when it has none ('', omit, no default())."""
        values = [NO_DEFAULT if v == '' else v for v in self.defaults.get(var, [])]  # '' and omit: no default
        distinct = {'(none)' if v is NO_DEFAULT else repr(v) for v in values}
        assert len(distinct) <= 1, f'{self.name}: {var} is read with different defaults {sorted(distinct)}'
        return values[0] if values else NO_DEFAULT

    def required(self):
        """Extra vars an assert requires on their own (`x | default('') | length > 0`)."""
        names = set()
        for task in self.tasks:
            args = task.get('ansible.builtin.assert') or task.get('assert')
            if isinstance(args, dict):
                that = args.get('that')
                for condition in [that] if isinstance(that, str) else that or []:
                    match = REQUIRED_CONDITION.match(condition)
                    if match:
                        names.add(match.group(1))
        return names

    def header_inputs(self):
        """Names the header comment lists after `required:` and `optional:` (parenthesised notes left out)."""
        lines = []
        for line in self.text.splitlines():
            if line.strip() == '---':
                continue
            if not line.startswith('#'):
                break
            lines.append(line[1:])
        text, listing = [], False
        for line in lines:
            label = re.match(r'\s*(required|optional|[A-Za-z /]+):', line)
            if label and not line.startswith(' ' * 5):
                listing = label.group(1) in ('required', 'optional')
                line = line[label.end():]
            if listing:
                text.append(line)
        flat = ' '.join(text)
        while re.search(r'\([^()]*\)', flat):
            flat = re.sub(r'\([^()]*\)', ' ', flat)
        return set(re.findall(r'[A-Za-z_]\w*', flat)) - {'or', 'and'}

    def option_specs(self):
        """{extra var: [(where, option name, option spec)]} for the role and module options it is passed to."""
        found = {}
        for task in self.tasks:
            for where, args, specs in _option_sources(task):
                for option, value in args.items():
                    if not isinstance(value, str) or option not in specs:
                        continue
                    names = set()
                    for template in _templates({'value': value}):
                        names |= _names(template)[0]
                    names &= self.extra_vars
                    if len(names) == 1:
                        found.setdefault(names.pop(), []).append((where, option, specs[option]))
        return found


def _option_sources(task):
    """(where, arguments, option specs) for a task that runs the collection's role or one of its modules."""
    for action in ('ansible.builtin.include_role', 'ansible.builtin.import_role', 'include_role', 'import_role'):
        args = task.get(action)
        if isinstance(args, dict) and str(args.get('name', '')).startswith(FQCN):
            role = args['name'][len(FQCN):]
            yield f'role {role}', task.get('vars') or {}, _role_options(role)
    for action, args in task.items():
        if isinstance(action, str) and action.startswith(FQCN) and isinstance(args, dict):
            module = action[len(FQCN):]
            yield f'module {module}', args, _module_options(module)


def _role_options(role='postgresql_restore'):
    specs = yaml.safe_load((COLLECTION / f'roles/{role}/meta/argument_specs.yml').read_text(encoding='utf-8'))
    return specs['argument_specs']['main']['options']


def _python_string(path, class_name, attribute):
    tree = ast.parse(path.read_text(encoding='utf-8'))
    body = tree.body
    if class_name:
        body = next(n.body for n in body if isinstance(n, ast.ClassDef) and n.name == class_name)
    for node in body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == attribute for t in node.targets):
            return node.value.value
    raise AssertionError(f'{attribute} not found in {path}')


def _module_options(module):
    doc = yaml.safe_load(_python_string(COLLECTION / f'plugins/modules/{module}.py', None, 'DOCUMENTATION'))
    options = {}
    for fragment in doc.get('extends_documentation_fragment') or []:
        if not fragment.startswith(FQCN):
            continue
        file_name, _dot, attribute = fragment[len(FQCN):].partition('.')
        text = _python_string(COLLECTION / f'plugins/doc_fragments/{file_name}.py', 'ModuleDocFragment',
                              attribute or 'DOCUMENTATION')
        options.update((yaml.safe_load(text) or {}).get('options') or {})
    options.update(doc.get('options') or {})
    return options


def _load_survey(name):
    return json.loads((SURVEYS / f'{name}.json').read_text(encoding='utf-8'))


def _questions(name):
    return {q['variable']: q for q in _load_survey(name)['spec']}


# ---------------------------------------------------------------------------------------------------------------------
# Tests


def test_one_survey_per_playbook():
    assert PLAYBOOK_NAMES, f'no playbooks found in {PLAYBOOKS}'
    assert sorted(p.stem for p in SURVEYS.glob('*.json')) == PLAYBOOK_NAMES


def survey_problems(survey):
    """What AWX would refuse in a survey spec, or what makes a question unusable (empty: none)."""
    problems = []
    if not isinstance(survey, dict) or set(survey) != SURVEY_KEYS:
        return [f'top level must have exactly the keys {sorted(SURVEY_KEYS)}']
    for key in ('name', 'description'):
        if not isinstance(survey[key], str) or not survey[key].strip():
            problems.append(f'{key} must be a non-empty string')
    if not isinstance(survey['spec'], list) or not survey['spec']:
        return problems + ['spec must be a non-empty list']
    seen = set()
    for idx, question in enumerate(survey['spec']):
        where = f'question {idx}'
        if not isinstance(question, dict):
            problems.append(f'{where} is not an object')
            continue
        where = f"question {idx} ({question.get('variable')})"
        if QUESTION_REQUIRED_KEYS - set(question) or set(question) - QUESTION_KEYS:
            problems.append(f'{where}: missing {sorted(QUESTION_REQUIRED_KEYS - set(question))}, '
                            f'unknown {sorted(set(question) - QUESTION_KEYS)}')
            continue
        qtype, variable, default = question['type'], question['variable'], question.get('default', '')
        for key in ('question_name', 'question_description', 'variable', 'type'):
            if not isinstance(question[key], str) or not question[key].strip():
                problems.append(f'{where}: {key} must be a non-empty string')
        if not isinstance(question['required'], bool):
            problems.append(f'{where}: required must be true or false')
        if not re.fullmatch(r'[A-Za-z_]\w*', str(variable)):
            problems.append(f'{where}: variable is not a valid variable name')
        if variable in seen:
            problems.append(f'{where}: variable asked twice')
        seen.add(variable)
        if len(str(question['question_name'])) > MAX_QUESTION_NAME:
            problems.append(f'{where}: question_name longer than {MAX_QUESTION_NAME} characters')
        if qtype not in DEFAULT_TYPES:
            problems.append(f'{where}: type {qtype!r} is not one of {sorted(DEFAULT_TYPES)}')
            continue
        default_fits = default == '' or (isinstance(default, DEFAULT_TYPES[qtype]) and not isinstance(default, bool))
        if not default_fits:
            problems.append(f'{where}: default {default!r} does not fit type {qtype}')
        limits = [question.get(k) for k in ('min', 'max')]
        if any(v is not None and (not isinstance(v, int) or isinstance(v, bool)) for v in limits):
            problems.append(f'{where}: min and max must be integers')
        elif None not in limits and limits[0] > limits[1]:
            problems.append(f'{where}: min > max')
        elif default_fits and default != '' and qtype in ('integer', 'float', *TEXT_TYPES):
            size = len(default) if qtype in TEXT_TYPES else default
            if (limits[0] is not None and size < limits[0]) or (limits[1] is not None and size > limits[1]):
                problems.append(f'{where}: default {default!r} outside min/max')
        if qtype in CHOICE_TYPES:
            choices = question.get('choices')
            if (not isinstance(choices, list) or not choices or len(set(choices)) != len(choices)
                    or not all(isinstance(c, str) and c.strip() for c in choices)):
                problems.append(f'{where}: {qtype} needs a list of distinct non-empty choices')
                continue
            picked = [d for d in str(default).splitlines() if d.strip()]
            if qtype == 'multiplechoice' and len(picked) > 1:
                problems.append(f'{where}: multiplechoice can have one default only')
            if any(d not in choices for d in picked):
                problems.append(f'{where}: default {default!r} is not one of the choices {choices}')
            if not picked and question['required']:
                problems.append(f'{where}: a required choice needs a default')
        elif 'choices' in question:
            problems.append(f'{where}: choices on a {qtype} question')
        if qtype == 'password' and question.get('default', '') != '':
            problems.append(f'{where}: a password question must have no default')
        if 'password' in variable and qtype != 'password':
            problems.append(f'{where}: {variable} must be a password question')
    return problems


@pytest.mark.parametrize('name', PLAYBOOK_NAMES)
def test_survey_is_a_valid_awx_survey_spec(name):
    assert survey_problems(_load_survey(name)) == []


@pytest.mark.parametrize('name', PLAYBOOK_NAMES)
def test_survey_asks_exactly_the_extra_vars_the_playbook_reads(name):
    playbook, asked = Playbook(name), set(_questions(name))
    assert playbook.extra_vars, f'{name}: found no extra vars in the playbook'
    assert {
        'read by the playbook, not in the survey': sorted(playbook.extra_vars - asked),
        'in the survey, not read by the playbook': sorted(asked - playbook.extra_vars),
    } == {'read by the playbook, not in the survey': [], 'in the survey, not read by the playbook': []}


@pytest.mark.parametrize('name', PLAYBOOK_NAMES)
def test_playbook_header_lists_the_survey_vars(name):
    listed, asked = Playbook(name).header_inputs(), set(_questions(name))
    assert {
        'in the header comment, not in the survey': sorted(listed - asked),
        'in the survey, not in the header comment': sorted(asked - listed),
    } == {'in the header comment, not in the survey': [], 'in the survey, not in the header comment': []}


@pytest.mark.parametrize('name', PLAYBOOK_NAMES)
def test_required_questions_are_the_playbooks_required_vars(name):
    playbook = Playbook(name)
    required = playbook.required()
    assert required, f'{name}: found no required extra vars in the asserts'
    asked_required = {v for v, q in _questions(name).items() if q['required']}
    assert sorted(asked_required) == sorted(required)


@pytest.mark.parametrize('name', PLAYBOOK_NAMES)
def test_survey_defaults_are_the_playbooks_defaults(name):
    playbook, wrong = Playbook(name), []
    for variable, question in _questions(name).items():
        default, asked = playbook.default(variable), question.get('default', '')
        if default is NO_DEFAULT:
            expected = ''
        elif isinstance(default, bool):
            expected = str(default).lower()
            if question['type'] != 'multiplechoice' or question.get('choices') != BOOL_CHOICES:
                wrong.append(f'{variable}: a boolean: multiplechoice with choices {BOOL_CHOICES}')
        else:
            expected = default
            if isinstance(default, int) and question['type'] != 'integer':
                wrong.append(f'{variable}: an integer: type integer')
        if asked != expected or type(asked) is not type(expected):
            wrong.append(f'{variable}: default {asked!r}, the playbook has {expected!r}')
    assert wrong == []


@pytest.mark.parametrize('name', PLAYBOOK_NAMES)
def test_survey_types_and_choices_follow_the_role_and_module_options(name):
    playbook, questions, wrong = Playbook(name), _questions(name), []
    mapped = playbook.option_specs()
    if name.startswith('restore_'):
        assert any(where.startswith('role') for uses in mapped.values() for where, _o, _s in uses), \
            f'{name}: no extra var found passed to the role'
    for variable, uses in sorted(mapped.items()):
        question = questions.get(variable)
        if question is None:
            continue  # reported by test_survey_asks_exactly_the_extra_vars_the_playbook_reads
        qtype, choices = question['type'], question.get('choices')
        for where, option, spec in uses:
            what = f'{variable} ({where} option {option})'
            kind = spec.get('type', 'str')
            if spec.get('choices'):
                want = 'multiselect' if kind == 'list' else 'multiplechoice'
                if qtype != want or sorted(choices or []) != sorted(spec['choices']):
                    wrong.append(f"{what}: {want} with choices {spec['choices']}, not {qtype} {choices}")
            elif kind == 'bool':
                if qtype != 'multiplechoice' or choices != BOOL_CHOICES:
                    wrong.append(f'{what}: a bool: multiplechoice with choices {BOOL_CHOICES}')
            elif kind == 'int':
                if qtype != 'integer':
                    wrong.append(f'{what}: an int: type integer, not {qtype}')
            elif kind == 'list':
                if qtype not in ('multiselect', 'text'):
                    wrong.append(f'{what}: a list: type multiselect (or text), not {qtype}')
            elif qtype not in TEXT_TYPES:
                wrong.append(f'{what}: a string without choices: text or password, not {qtype}')
            if spec.get('no_log') and qtype != 'password':
                wrong.append(f'{what}: no_log: type password, not {qtype}')
            default = playbook.default(variable)
            if 'default' in spec and default is not NO_DEFAULT and default != spec['default']:
                wrong.append(f"{what}: the playbook's default {default!r} is not the option's {spec['default']!r}")
    assert wrong == []


_CHOICE = {'type': 'multiplechoice', 'question_name': 'Q', 'question_description': 'D', 'variable': 'v',
           'required': False, 'choices': ['a', 'b'], 'default': 'a'}
_INTEGER = {'type': 'integer', 'question_name': 'Q', 'question_description': 'D', 'variable': 'v', 'required': False,
            'default': 5, 'min': 1, 'max': 10}


def _spec(*questions, **top):
    return dict({'name': 'n', 'description': 'd', 'spec': list(questions)}, **top)


def test_survey_problems_accepts_a_good_spec():
    assert survey_problems(_spec(_CHOICE, dict(_INTEGER, variable='w'))) == []


@pytest.mark.parametrize('survey', [
    {'description': 'd', 'spec': [_CHOICE]},  # no name
    _spec(),  # no question
    _spec(_CHOICE, _CHOICE),  # variable asked twice
    _spec(dict(_CHOICE, default='c')),  # default not a choice
    _spec(dict(_CHOICE, default='a\nb')),  # two defaults for one choice
    _spec(dict(_CHOICE, choices=[])),
    _spec(dict(_CHOICE, type='boolean')),  # not an AWX type
    _spec(dict(_CHOICE, required='no')),
    _spec(dict(_CHOICE, type='text', default='x')),  # choices on a text question
    _spec(dict(_CHOICE, question_name='A question name far too long for a survey form')),
    _spec(dict(_INTEGER, default='5')),  # a string default on an integer question
    _spec(dict(_INTEGER, default=50)),  # default above max
    _spec(dict(_INTEGER, type='password', default='secret', min=None, max=None)),  # password default
    _spec(dict(_INTEGER, type='text', variable='admin_password', default='', min=None, max=None)),  # not a password
])
def test_survey_problems_refuses_a_broken_spec(survey):
    """The format check refuses what AWX refuses, so that a passing test means something."""
    assert survey_problems(survey)


def test_playbook_reader_finds_inputs_of_a_new_task(tmp_path):
    """An input added to a playbook (here: a task reading `new_input` and `other_input`) shows up as an extra var."""
    plays = yaml.safe_load((PLAYBOOKS / 'job_status.yml').read_text(encoding='utf-8'))
    plays[0]['tasks'].append({'name': 'New', 'ansible.builtin.debug': {'msg': "{{ new_input | default('x') }}"},
                              'when': 'other_input | default(false) | bool'})
    (tmp_path / 'job_status.yml').write_text(yaml.safe_dump(plays), encoding='utf-8')
    playbook = Playbook('job_status', tmp_path / 'job_status.yml')
    assert playbook.extra_vars - set(_questions('job_status')) == {'new_input', 'other_input'}
    assert playbook.default('new_input') == 'x'
    assert playbook.default('other_input') is False

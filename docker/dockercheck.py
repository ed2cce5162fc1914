"""Static checks of Dockerfiles, .dockerignore files and compose files, without Docker.

There is no Docker daemon on the development machines, so the images in docker/ cannot be
built there. This module parses the files the way the Docker builder and Compose read them
(instructions, stages, ARGs, COPY sources, ignore patterns, ``${VAR}`` interpolation) and
offers small checks that return a list of problems (empty when the file is fine). The tests
in docker/test_docker_files.py run them on the real files and on broken examples.

Only the subset of the Dockerfile syntax used in this repository is supported: the default
escape character, no heredocs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
import json
from pathlib import Path
import re
from typing import Any

import yaml

# --------------------------------------------------------------------------------------------
# Dockerfile


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction with its line continuations joined."""

    keyword: str
    #: Everything after the keyword (flags included), continuations joined with a space.
    value: str
    #: 1-based line number where the instruction starts.
    line: int
    #: Leading ``--name=value`` flags (``COPY --from=build``; a bare ``--link`` maps to '').
    flags: Mapping[str, str] = field(default_factory=dict)
    #: Arguments after the flags: the JSON list of the exec form, else whitespace-split words.
    args: tuple[str, ...] = ()
    #: True when the arguments were written as a JSON array (exec form).
    exec_form: bool = False


@dataclass
class Stage:
    """A build stage: ``FROM <base> [AS <name>]`` and its instructions."""

    index: int
    base: str
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)

    def arg_defaults(self) -> dict[str, str | None]:
        """ARGs declared in this stage and their defaults (None when declared without one)."""
        return _arg_defaults(self.instructions)


@dataclass
class Dockerfile:
    """A parsed Dockerfile: instructions before the first FROM, then the stages."""

    preamble: list[Instruction]
    stages: list[Stage]

    @property
    def instructions(self) -> list[Instruction]:
        """Every instruction in file order."""
        out = list(self.preamble)
        for stage in self.stages:
            out.append(Instruction('FROM', stage.base, stage.line))
            out.extend(stage.instructions)
        return out

    def global_args(self) -> dict[str, str | None]:
        """ARGs declared before the first FROM and their defaults."""
        return _arg_defaults(self.preamble)

    def stage(self, name: str) -> Stage:
        """The stage called ``name``.

        Raises:
            KeyError: no stage has that name.
        """
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f'no stage named {name!r} (stages: {[s.name for s in self.stages]})')


def _arg_defaults(instructions: Iterable[Instruction]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for ins in instructions:
        if ins.keyword != 'ARG':
            continue
        for word in ins.args:
            name, eq, default = word.partition('=')
            out[name] = _unquote(default) if eq else None
    return out


def _unquote(s: str) -> str:
    if len(s) >= 2 and s[0] == s[-1] and s[0] in '"\'':
        return s[1:-1]
    return s


def _split_flags(value: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    rest = value.strip()
    while rest.startswith('--'):
        word, _, tail = rest.partition(' ')
        name, _, flag_value = word[2:].partition('=')
        flags[name] = flag_value
        rest = tail.strip()
    return flags, rest


def parse_dockerfile(text: str) -> Dockerfile:
    """Parse Dockerfile text into instructions and stages.

    Args:
        text: the Dockerfile's content.

    Returns:
        The parsed file.

    Raises:
        ValueError: an instruction other than ARG before the first FROM, or a FROM without an
            image.
    """
    logical: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith('#'):
            continue  # comments (and parser directives), also inside continuations
        if not buf and not stripped:
            continue
        if not buf:
            start = number
        if stripped.endswith('\\'):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        logical.append((start, ' '.join(p for p in buf if p)))
        buf = []
    if buf:
        logical.append((start, ' '.join(p for p in buf if p)))

    preamble: list[Instruction] = []
    stages: list[Stage] = []
    for line, content in logical:
        keyword, _, value = content.partition(' ')
        keyword = keyword.upper()
        value = value.strip()
        flags, rest = (
            _split_flags(value)
            if keyword in ('COPY', 'ADD', 'FROM', 'RUN')
            else (
                {},
                value,
            )
        )
        exec_form = False
        args: tuple[str, ...]
        if rest.startswith('['):
            try:
                parsed = json.loads(rest)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, list) and all(isinstance(a, str) for a in parsed):
                args, exec_form = tuple(parsed), True
            else:
                args = tuple(rest.split())
        else:
            args = tuple(rest.split())
        ins = Instruction(keyword, value, line, flags, args, exec_form)
        if keyword == 'FROM':
            if not args:
                raise ValueError(f'line {line}: FROM without an image')
            name = args[2] if len(args) >= 3 and args[1].upper() == 'AS' else None
            stages.append(Stage(len(stages), args[0], name, line))
        elif not stages:
            if keyword != 'ARG':
                raise ValueError(f'line {line}: {keyword} before the first FROM (only ARG may be)')
            preamble.append(ins)
        else:
            stages[-1].instructions.append(ins)
    return Dockerfile(preamble, stages)


def run_text(ins: Instruction) -> str:
    """The command a RUN executes, as one string (exec form joined with spaces)."""
    return ' '.join(ins.args) if ins.exec_form else _split_flags(ins.value)[1]


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Substitute ``${NAME}`` and ``$NAME`` with known values; leave unknown ones as they are.

    Args:
        text: a string from a Dockerfile.
        variables: values of ARGs/ENVs.

    Returns:
        The string with the known variables replaced.
    """

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return variables.get(name, m.group(0))

    return re.sub(r'\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)', repl, text)


def check_global_arg(df: Dockerfile, name: str, default: str) -> list[str]:
    """``ARG name=default`` must be declared before the first FROM.

    Args:
        df: the parsed Dockerfile.
        name: ARG name.
        default: its expected default.

    Returns:
        Problems (empty when the ARG is there with that default).
    """
    args = df.global_args()
    if name not in args:
        return [f'ARG {name} is not declared before the first FROM']
    if args[name] != default:
        return [f'ARG {name} defaults to {args[name]!r} before the first FROM, not {default!r}']
    return []


def check_stages(df: Dockerfile, min_stages: int = 2) -> list[str]:
    """At least ``min_stages`` stages, unique names, references to earlier stages only.

    Args:
        df: the parsed Dockerfile.
        min_stages: the fewest stages a multi-stage build has.

    Returns:
        Problems.
    """
    problems = []
    if len(df.stages) < min_stages:
        problems.append(f'{len(df.stages)} stage(s); a multi-stage build needs {min_stages}')
    seen: set[str] = set()
    for stage in df.stages:
        if stage.name is None:
            problems.append(f'line {stage.line}: stage {stage.index} has no name (FROM ... AS x)')
        elif stage.name in seen:
            problems.append(f'line {stage.line}: stage name {stage.name!r} is used twice')
        for ins in stage.instructions:
            ref = ins.flags.get('from')
            if ins.keyword == 'COPY' and ref is not None and ref not in seen:
                if ':' not in ref and '/' not in ref:
                    problems.append(
                        f'line {ins.line}: COPY --from={ref} names no earlier stage '
                        f'(earlier: {sorted(seen)})'
                    )
        if stage.name:
            seen.add(stage.name)
    return problems


APT_INSTALL = re.compile(r'\bapt(?:-get)?\s+install\b')
APT_UPDATE = re.compile(r'\bapt(?:-get)?\s+update\b')
APT_LISTS_REMOVED = re.compile(r'\brm\s+-(?:rf|fr)\s+/var/lib/apt/lists/\*?')
ROSDEP_INSTALL = re.compile(r'\brosdep\s+install\b')


def check_apt_hygiene(df: Dockerfile) -> list[str]:
    """Every RUN that installs apt packages updates, skips recommends and cleans up itself.

    A RUN with ``apt-get install`` needs ``apt-get update`` before it and
    ``--no-install-recommends``; it and a RUN with ``rosdep install`` (which calls apt-get)
    must remove /var/lib/apt/lists in the same RUN, or the lists stay in the layer.

    Args:
        df: the parsed Dockerfile.

    Returns:
        Problems.
    """
    problems = []
    for ins in df.instructions:
        if ins.keyword != 'RUN':
            continue
        cmd = run_text(ins)
        install = APT_INSTALL.search(cmd)
        rosdep = ROSDEP_INSTALL.search(cmd)
        if not install and not rosdep:
            continue
        first = install or rosdep
        assert first is not None
        update = APT_UPDATE.search(cmd)
        if update is None or update.start() > first.start():
            problems.append(f'line {ins.line}: apt-get update does not run before the install')
        if install and '--no-install-recommends' not in cmd:
            problems.append(f'line {ins.line}: apt-get install without --no-install-recommends')
        if not APT_LISTS_REMOVED.search(cmd):
            problems.append(
                f'line {ins.line}: installs packages but does not rm -rf /var/lib/apt/lists/* '
                'in the same RUN'
            )
    return problems


ROS_PACKAGE = re.compile(r'\bros-(?:\$\{ROS_DISTRO\}|\$ROS_DISTRO|[a-z]+)-[a-z0-9][a-z0-9-]*')


def ros_apt_packages(df: Dockerfile, distro: str) -> set[str]:
    """Every ``ros-<distro>-*`` package name that a RUN mentions, with ROS_DISTRO expanded.

    Args:
        df: the parsed Dockerfile.
        distro: the value of ROS_DISTRO.

    Returns:
        Package names such as ``ros-jazzy-moveit``.
    """
    names = set()
    for ins in df.instructions:
        if ins.keyword == 'RUN':
            for m in ROS_PACKAGE.finditer(run_text(ins)):
                names.add(expand(m.group(0), {'ROS_DISTRO': distro}))
    return names


def copy_sources(df: Dockerfile, stage: str | None = None) -> list[tuple[Instruction, str]]:
    """``(instruction, source)`` for every COPY/ADD source read from the build context.

    Args:
        df: the parsed Dockerfile.
        stage: only this stage (default: all).

    Returns:
        Sources of COPY/ADD without ``--from`` (those copy from other stages or images).
    """
    out = []
    for s in df.stages:
        if stage is not None and s.name != stage:
            continue
        for ins in s.instructions:
            if ins.keyword in ('COPY', 'ADD') and 'from' not in ins.flags:
                out.extend((ins, src) for src in ins.args[:-1])
    return out


def check_copy_sources(df: Dockerfile, context: Path, ignore: Iterable[str] = ()) -> list[str]:
    """Every COPY/ADD source exists in the build context and is not excluded by .dockerignore.

    Args:
        df: the parsed Dockerfile.
        context: the build context directory.
        ignore: the .dockerignore patterns that apply.

    Returns:
        Problems.
    """
    patterns = list(ignore)
    problems = []
    for ins, src in copy_sources(df):
        rel = src.lstrip('/')
        rel = '.' if rel in ('', '.', './') else rel.removeprefix('./')
        if not (context / rel).exists():
            problems.append(f'line {ins.line}: COPY source {src} does not exist in {context}')
        elif rel != '.' and is_ignored(rel, patterns):
            problems.append(f'line {ins.line}: COPY source {src} is excluded by .dockerignore')
    return problems


def check_rosdep_layer(df: Dockerfile, stage: str, package_xmls: Iterable[str]) -> list[str]:
    """The rosdep layer copies exactly the package.xml files, and nothing else, before rosdep.

    Args:
        df: the parsed Dockerfile.
        stage: the stage with the rosdep layer.
        package_xmls: repo-relative paths of every package.xml (``src/*/package.xml``).

    Returns:
        Problems (a package missing from the layer, an extra one, or another file copied
        before ``rosdep install``, which would re-run it on every code change).
    """
    problems = []
    copied: list[str] = []
    ran_rosdep = False
    for ins in df.stage(stage).instructions:
        if ins.keyword == 'RUN' and ROSDEP_INSTALL.search(run_text(ins)):
            ran_rosdep = True
            if '--from-paths' not in run_text(ins) or '--ignore-src' not in run_text(ins):
                problems.append(
                    f'line {ins.line}: rosdep install without --from-paths / --ignore-src'
                )
            break
        if ins.keyword in ('COPY', 'ADD') and 'from' not in ins.flags:
            for src in ins.args[:-1]:
                copied.append(src.removeprefix('./'))
                if not src.endswith('package.xml'):
                    problems.append(
                        f'line {ins.line}: {src} is copied before rosdep install: any change '
                        'to it re-runs the rosdep layer'
                    )
    if not ran_rosdep:
        return [f'stage {stage!r} has no RUN ... rosdep install']
    want = sorted(package_xmls)
    have = sorted(c for c in copied if c.endswith('package.xml'))
    for missing in sorted(set(want) - set(have)):
        problems.append(f'{missing} is not copied into the rosdep layer')
    for extra in sorted(set(have) - set(want)):
        problems.append(f'the rosdep layer copies {extra}, which is not a package of src/')
    return problems


# --------------------------------------------------------------------------------------------
# .dockerignore


def parse_dockerignore(text: str) -> list[str]:
    """Patterns of a .dockerignore file, in order (comments and blank lines dropped)."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith('#'):
            out.append(line)
    return out


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip('/').removeprefix('./')
    out = ''
    i = 0
    while i < len(pattern):
        if pattern.startswith('**/', i):
            out += '(?:.*/)?'
            i += 3
        elif pattern.startswith('**', i):
            out += '.*'
            i += 2
        elif pattern[i] == '*':
            out += '[^/]*'
            i += 1
        elif pattern[i] == '?':
            out += '[^/]'
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r'\Z')


def is_ignored(path: str, patterns: Iterable[str]) -> bool:
    """Whether a context-relative path is excluded (itself or a parent folder matches).

    The last matching pattern wins; ``!pattern`` re-includes, as in Docker.

    Args:
        path: path relative to the build context, ``/``-separated.
        patterns: .dockerignore patterns.

    Returns:
        True when the path is not sent to the builder.
    """
    parts = path.strip('/').split('/')
    prefixes = ['/'.join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith('!')
        regex = _pattern_regex(pattern[1:] if negate else pattern)
        if any(regex.match(p) for p in prefixes):
            ignored = not negate
    return ignored


# --------------------------------------------------------------------------------------------
# Shell scripts


def check_entrypoint(text: str, sources: Iterable[str]) -> list[str]:
    """An entrypoint script sources the given setup files, in order, then ``exec "$@"``.

    Args:
        text: the script.
        sources: substrings naming the setup files, in the order they must be sourced.

    Returns:
        Problems.
    """
    sources = list(sources)
    problems = []
    lines = [ln.strip() for ln in text.splitlines()]
    code = [ln for ln in lines if ln and not ln.startswith('#')]
    if not lines or not lines[0].startswith('#!'):
        problems.append('no #! line')
    position = -1
    for name in sources:
        hits = [i for i, ln in enumerate(lines) if name in ln]
        if not hits:
            problems.append(f'does not name {name}')
            continue
        if hits[0] < position:
            problems.append(f'{name} is named before the previous setup file')
        position = hits[0]
    source_lines = [ln for ln in code if ln.startswith(('source ', '. '))]
    if len(source_lines) < len(sources):
        problems.append(f'sources {len(source_lines)} file(s), expected {len(sources)}')
    if not code or code[-1] != 'exec "$@"':
        problems.append('does not end with exec "$@"')
    return problems


# --------------------------------------------------------------------------------------------
# requirements files


REQUIREMENT = re.compile(r'^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$')


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r'[-_.]+', '-', name).lower()


def parse_requirements(text: str, environment: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{canonical name: specifier}`` of a requirements/constraints file.

    Args:
        text: file content (comments, blank lines and ``-r``/``-c`` lines are skipped).
        environment: marker variables (e.g. ``{'python_version': '3.12'}``): lines whose
            ``; marker`` is false there are skipped, so a constraints file with per-Python pins
            gives the pins of that Python. ``None``: markers are not evaluated.

    Returns:
        The specifier of each requirement ('' when unpinned).
    """
    out = {}
    for raw in text.splitlines():
        line = raw.split('#', 1)[0].strip()
        if not line or line.startswith('-'):
            continue
        m = REQUIREMENT.match(line)
        if m is None:
            raise ValueError(f'cannot read requirement line {raw!r}')
        spec, _, marker = m.group(3).partition(';')
        if environment is not None and marker.strip():
            from packaging.markers import Marker

            if not Marker(marker.strip()).evaluate(dict(environment)):
                continue
        out[canonical(m.group(1))] = spec.strip()
    return out


def check_pins(requirements: Mapping[str, str], constraints: Mapping[str, str]) -> list[str]:
    """Every requirement is pinned with ``==`` and its pin equals the constraints file's.

    Args:
        requirements: parsed requirements (``parse_requirements``).
        constraints: parsed constraints.

    Returns:
        Problems.
    """
    problems = []
    for name, spec in sorted(requirements.items()):
        if not spec.startswith('==') or any(c in spec for c in ',<>*'):
            problems.append(f'{name} is not pinned with == ({spec or "no version"})')
        elif name not in constraints:
            problems.append(f'{name} is not in the constraints file')
        elif constraints[name] != spec:
            problems.append(
                f'{name}{spec} differs from the constraints file ({constraints[name]})'
            )
    return problems


# --------------------------------------------------------------------------------------------
# compose


VARIABLE = re.compile(r'\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}')


@dataclass(frozen=True)
class ComposeVariable:
    """A ``${NAME...}`` reference in a compose file."""

    name: str
    required: bool
    default: str | None


def _strings(data: Any) -> Iterable[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, Mapping):
        for value in data.values():
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)


def compose_variables(compose: Mapping[str, Any]) -> dict[str, ComposeVariable]:
    """Every variable a loaded compose file interpolates (in values; comments are not read).

    Args:
        compose: the loaded compose file.

    Returns:
        ``{name: variable}``; a name used both with a default and as required counts as
        required.
    """
    out: dict[str, ComposeVariable] = {}
    for text in _strings(compose):
        for m in VARIABLE.finditer(text):
            name, op, arg = m.group(1), m.group(2) or '', m.group(3)
            required = op.endswith('?')
            default = arg if op.endswith('-') else None
            old = out.get(name)
            if old is not None:
                required = required or old.required
                default = old.default if old.default is not None else default
            out[name] = ComposeVariable(name, required, default)
    return out


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose-style interpolation of one string.

    Args:
        value: a string from the compose file.
        env: variables that are set.

    Returns:
        The string with ``${X}``, ``${X:-d}``, ``${X-d}`` and ``${X:?err}`` replaced.

    Raises:
        KeyError: a required variable (``${X:?err}``) is not set.
    """

    def repl(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or '', m.group(3) or ''
        val = env.get(name)
        if op.endswith('?'):
            if not val:
                raise KeyError(f'{name} is required: {arg}')
            return val
        if op == ':-':
            return val if val else arg
        if op == '-':
            return val if val is not None else arg
        return val or ''

    return VARIABLE.sub(repl, value)


def load_compose(text: str) -> dict[str, Any]:
    """The compose file as data (YAML anchors and ``<<`` merge keys resolved)."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get('services'), dict):
        raise ValueError('a compose file is a mapping with a services: mapping')
    return data


def service_profiles(compose: Mapping[str, Any]) -> dict[str, list[str]]:
    """``{profile: [service, ...]}``; services without profiles are listed under ''."""
    out: dict[str, list[str]] = {}
    for name, svc in compose['services'].items():
        for profile in svc.get('profiles') or ['']:
            out.setdefault(profile, []).append(name)
    return out


def command_words(service: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """A service's command as a word list after interpolation (shell-form strings split)."""
    cmd = service.get('command') or []
    words = cmd.split() if isinstance(cmd, str) else [str(w) for w in cmd]
    return [interpolate(w, env) for w in words]


def launch_invocation(words: list[str]) -> tuple[str, str, dict[str, str]] | None:
    """``(package, launch file, {arg: value})`` of a ``ros2 launch`` command, else None.

    Raises:
        ValueError: an argument after the launch file is not ``name:=value``.
    """
    if len(words) < 4 or words[:2] != ['ros2', 'launch']:
        return None
    args = {}
    for w in words[4:]:
        name, sep, value = w.partition(':=')
        if not sep or not name:
            raise ValueError(f'launch argument {w!r} is not name:=value')
        args[name] = value
    return words[2], words[3], args


def check_builds(compose: Mapping[str, Any], compose_dir: Path) -> list[str]:
    """Every service's build context and Dockerfile exist, and the target stage is defined.

    Args:
        compose: the loaded compose file.
        compose_dir: the folder of the compose file (relative paths start there).

    Returns:
        Problems.
    """
    problems = []
    for name, svc in compose['services'].items():
        build = svc.get('build')
        if build is None:
            if 'image' not in svc:
                problems.append(f'service {name} has neither build nor image')
            continue
        if isinstance(build, str):
            build = {'context': build}
        context = (compose_dir / build.get('context', '.')).resolve()
        if not context.is_dir():
            problems.append(f'service {name}: build context {context} does not exist')
            continue
        dockerfile = context / build.get('dockerfile', 'Dockerfile')
        if not dockerfile.is_file():
            problems.append(f'service {name}: Dockerfile {dockerfile} does not exist')
            continue
        target = build.get('target')
        if target:
            stages = [s.name for s in parse_dockerfile(dockerfile.read_text()).stages]
            if target not in stages:
                problems.append(f'service {name}: target {target!r} is not a stage of {stages}')
    return problems


def published_ports(service: Mapping[str, Any], env: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(host port, container port)`` of a service's short-syntax ``ports`` entries."""
    out = []
    for entry in service.get('ports') or []:
        parts = interpolate(str(entry), env).split('/')[0].split(':')
        out.append((parts[-2] if len(parts) >= 2 else parts[-1], parts[-1]))
    return out


def check_host_ports(compose: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """No host port is published twice within one profile; host-network services publish none.

    Args:
        compose: the loaded compose file.
        env: values for the variables.

    Returns:
        Problems.
    """
    problems = []
    for name, svc in compose['services'].items():
        if svc.get('network_mode') == 'host' and svc.get('ports'):
            problems.append(f'service {name} uses the host network and also publishes ports')
    for profile, names in service_profiles(compose).items():
        seen: dict[str, str] = {}
        for name in names:
            for host, _ in published_ports(compose['services'][name], env):
                if host in seen:
                    problems.append(
                        f'profile {profile}: host port {host} is published by both '
                        f'{seen[host]} and {name}'
                    )
                seen[host] = name
    return problems


def service_ipv4(service: Mapping[str, Any]) -> dict[str, str]:
    """``{network: fixed IPv4 address}`` of a service."""
    nets = service.get('networks') or {}
    if isinstance(nets, list):
        return {}
    return {
        net: str(cfg['ipv4_address']) for net, cfg in nets.items() if cfg and 'ipv4_address' in cfg
    }


def undocumented(variables: Iterable[ComposeVariable], readme: str) -> list[str]:
    """Variables that a README does not document.

    A variable counts as documented when its name appears in backticks (`NAME`); a required
    one must also be on a line that says "required".

    Args:
        variables: the compose file's variables.
        readme: the README text.

    Returns:
        Problems.
    """
    problems = []
    for var in sorted(variables, key=lambda v: v.name):
        lines = [ln for ln in readme.splitlines() if f'`{var.name}`' in ln]
        if not lines:
            problems.append(f'${{{var.name}}} is not documented (no `{var.name}` in the README)')
        elif var.required and not any('required' in ln.lower() for ln in lines):
            problems.append(f'${{{var.name}}} is required but the README does not say so')
    return problems


def check_fixed_addresses(
    compose: Mapping[str, Any], network: str, robot_service: str, env: Mapping[str, str]
) -> list[str]:
    """Fixed IPs on a compose network are unique, inside its subnet, and used consistently.

    Every ``robot_ip:=`` in a command of a service on ``network`` must be the address of
    ``robot_service``, and every ``reverse_ip:=`` the address of the service itself.

    Args:
        compose: the loaded compose file.
        network: the network with fixed addresses.
        robot_service: the service that plays the robot (URSim).
        env: values for the variables.

    Returns:
        Problems.
    """
    import ipaddress

    problems = []
    try:
        subnet = ipaddress.ip_network(compose['networks'][network]['ipam']['config'][0]['subnet'])
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        return [f'network {network} has no ipam subnet ({type(exc).__name__}: {exc})']
    addresses: dict[str, str] = {}
    for name, svc in compose['services'].items():
        ip = service_ipv4(svc).get(network)
        if ip is None:
            continue
        if ipaddress.ip_address(ip) not in subnet:
            problems.append(f'service {name}: {ip} is outside {subnet}')
        if ip in addresses.values():
            problems.append(f'service {name}: {ip} is also used by another service')
        addresses[name] = ip
    robot_ip = addresses.get(robot_service)
    if robot_ip is None:
        return problems + [f'service {robot_service} has no fixed address on {network}']
    for name, ip in addresses.items():
        for word in command_words(compose['services'][name], env):
            key, sep, value = word.partition(':=')
            if sep and key == 'robot_ip' and value != robot_ip:
                problems.append(
                    f'service {name}: robot_ip:={value} but {robot_service} is {robot_ip}'
                )
            if sep and key == 'reverse_ip' and value != ip:
                problems.append(f'service {name}: reverse_ip:={value} but its own address is {ip}')
    return problems

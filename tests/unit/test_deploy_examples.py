"""The deployment examples in deploy/ stay in step with the real CLI.

Every YAML document parses; every ``bulkcopy`` command line written in them
(container commands and args, systemd ``ExecStart=`` lines, shell scripts run
with ``sh -c``, commented examples, the shell blocks of deploy/README.md) is
accepted by the CLI's own option parser, without running anything; and the
pieces that must agree with each other and with the CLI do: the non-root user,
the pods' security contexts, the database variable's name, the Secret's keys,
the demo manifest and the objects the demo uploads.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from engine.cli import cli
from engine.cli.submit import build_source, build_spec
from engine.manifest.csv import read_csv_manifest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"

# what an unresolvable shell variable ("$JOB") becomes on a parsed command line
PLACEHOLDER = "PLACEHOLDER"
# systemd's EnvironmentFile= paths, and the examples that document them
ENV_FILES = {
    "/etc/bulkcopy/env": SYSTEMD / "env.example",
    "/etc/bulkcopy/migration.env": SYSTEMD / "migration.env.example",
}
SHELLS = {"sh", "bash", "dash", "ash"}


@dataclass(frozen=True)
class Invocation:
    """One ``bulkcopy`` command line: where it was found and its arguments."""

    where: str
    argv: tuple[str, ...]

    @property
    def command(self) -> str:
        return self.argv[0] if self.argv else ""


# -- finding command lines ------------------------------------------------------

_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_ASSIGNMENT = re.compile(r"^\w+=")
_PUNCT = frozenset("();<>|&")
# words that may stand before a command in a shell line
_PREFIX_WORDS = {"exec", "then", "do", "else", "if", "!", "time", "command"}


def _is_bulkcopy(word: str) -> bool:
    return re.fullmatch(r"(?:[\w.-]*/)*bulkcopy", word) is not None


def substitute(word: str, env: dict[str, str]) -> str:
    """``word`` with ``$VAR`` / ``${VAR}`` replaced from ``env`` or a placeholder."""
    return _VAR.sub(lambda m: env.get(m[1] or m[2], PLACEHOLDER), word)


def simple_commands(script: str) -> Iterator[list[str]]:
    """The simple commands of a shell script, as lists of words (quotes
    removed, comments dropped, split at operators and redirections)."""
    script = script.replace("\\\n", " ")
    for line in script.splitlines():
        lex = shlex.shlex(line, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        words: list[str] = []
        for word in lex:
            if word and set(word) <= _PUNCT:
                if words and words[-1].isdigit() and word[0] in "<>":
                    words.pop()  # the 2 of 2>&1
                if words:
                    yield words
                words = []
            else:
                words.append(word)
        if words:
            yield words


def _wrapped_argv(words: list[str]) -> list[str] | None:
    """The bulkcopy arguments of ``docker compose run … cli ARGS`` and
    ``docker run … bulkcopy:TAG ARGS``, else ``None``."""
    if not words or words[0] != "docker" or "--entrypoint" in words:
        return None
    if "compose" in words and "run" in words:
        rest = words[words.index("run") + 1 :]
        return rest[rest.index("cli") + 1 :] if "cli" in rest else None
    if words[1:2] == ["run"]:
        for i, word in enumerate(words[2:], start=2):
            if re.fullmatch(r"(?:[\w.-]+/)*bulkcopy:[\w.-]+", word):
                return words[i + 1 :]
    return None


def bulkcopy_argvs(
    script: str, env: dict[str, str] | None = None
) -> Iterator[list[str]]:
    """The arguments of every bulkcopy invocation in a shell script: as a
    command, after ``--`` (``kubectl exec POD -- bulkcopy …``), or through
    ``docker compose run cli`` / ``docker run IMAGE``."""
    env = env or {}
    for words in simple_commands(script):
        argv = _wrapped_argv(words)
        if argv is None:
            for i, word in enumerate(words):
                if not _is_bulkcopy(word):
                    continue
                before = words[:i]
                if all(w in _PREFIX_WORDS or _ASSIGNMENT.match(w) for w in before) or (
                    before and before[-1] == "--"
                ):
                    argv = words[i + 1 :]
                    break
        if argv is not None:
            yield [substitute(w, env) for w in argv]


def commented_code(text: str) -> str:
    """The command examples in ``#`` comments: lines indented by two or more
    spaces after the ``#`` that start with a command (and their ``\\``
    continuations), as a script."""
    out: list[str] = []
    continuing = False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            continuing = False
            continue
        body = stripped[1:]
        code = body.strip()
        starts = re.match(r"\s{2,}(bulkcopy|kubectl|docker|\w+=\S*\s+bulkcopy)\b", body)
        if continuing or starts:
            out.append(code)
            continuing = code.endswith("\\")
    return "\n".join(out)


def readme_code(text: str) -> str:
    """The shell code blocks of a Markdown file, as one script."""
    blocks = re.findall(r"```(?:sh|bash|shell)\n(.*?)```", text, flags=re.S)
    return "\n".join(blocks)


def _pod_specs(node: Any) -> Iterator[dict[str, Any]]:
    """Every pod spec (a mapping with ``containers``) in a Kubernetes object."""
    if isinstance(node, dict):
        if isinstance(node.get("containers"), list):
            yield node
        for value in node.values():
            yield from _pod_specs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _pod_specs(value)


def _shell_script(argv: list[str]) -> str | None:
    """The script of ``sh -c SCRIPT`` (also ``-ec``, ``-euc``), else ``None``."""
    if not argv or os.path.basename(argv[0]) not in SHELLS:
        return None
    for i, arg in enumerate(argv[1:-1], start=1):
        if re.fullmatch(r"-[a-z]*c[a-z]*", arg):
            return argv[i + 1]
    return None


def _argvs_of(
    command: list[str], args: list[str], env: dict[str, str], bulkcopy_image: bool
) -> Iterator[list[str]]:
    """bulkcopy argument lists of a container's command + args."""
    full = [str(w) for w in command + args]
    if not command:
        if bulkcopy_image:
            yield [substitute(w, env) for w in full]
        return
    if _is_bulkcopy(full[0]):
        yield [substitute(w, env) for w in full[1:]]
        return
    script = _shell_script(full)
    if script is not None:
        yield from bulkcopy_argvs(script, env)


def _k8s_env(container: dict[str, Any]) -> dict[str, str]:
    return {
        e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e
    }


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc)
        for path in sorted(K8S.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def k8s_containers() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(file, pod spec, container) of every container in deploy/k8s."""
    for name, doc in k8s_documents():
        for spec in _pod_specs(doc):
            for container in spec["containers"] + spec.get("initContainers", []):
                yield name, spec, container


def _container_argvs(container: dict[str, Any]) -> list[list[str]]:
    return list(
        _argvs_of(
            list(container.get("command", [])),
            list(container.get("args", [])),
            _k8s_env(container),
            "bulkcopy" in container.get("image", ""),
        )
    )


def _runs_bulkcopy(container: dict[str, Any]) -> bool:
    return bool(_container_argvs(container))


def _runs_worker(container: dict[str, Any]) -> bool:
    return any(argv[:1] == ["worker"] for argv in _container_argvs(container))


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _compose_uses_image(service: dict[str, Any]) -> bool:
    build = service.get("build") or {}
    if isinstance(build, dict) and build.get("dockerfile") == "deploy/Dockerfile":
        return True
    return str(service.get("image", "")).startswith("bulkcopy")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


@dataclass
class Unit:
    """A systemd unit file: (section, key, value) entries in order."""

    path: Path
    entries: list[tuple[str, str, str]] = field(default_factory=list)

    def get(self, key: str, section: str | None = None) -> list[str]:
        return [
            v
            for s, k, v in self.entries
            if k == key and (section is None or s == section)
        ]

    def one(self, key: str) -> str:
        values = self.get(key)
        assert values, f"{self.path.name}: no {key}="
        return values[-1]


def read_unit(path: Path) -> Unit:
    unit = Unit(path)
    section = ""
    text = re.sub(r"\\\n", " ", path.read_text())
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        unit.entries.append((section, key.strip(), value.strip()))
    return unit


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def unit_env(unit: Unit) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in unit.get("EnvironmentFile"):
        example = ENV_FILES.get(value.lstrip("-"))
        if example is not None:
            env.update(read_env_file(example))
    for value in unit.get("Environment"):
        for assignment in shlex.split(value):
            key, _, val = assignment.partition("=")
            env[key] = val
    if unit.get("StateDirectory"):
        env["STATE_DIRECTORY"] = "/var/lib/" + unit.one("StateDirectory").split()[0]
    return env


def exec_argvs(unit: Unit) -> Iterator[list[str]]:
    """bulkcopy argument lists of a unit's Exec*= lines."""
    env = unit_env(unit)
    for key in ("ExecStartPre", "ExecStart", "ExecStartPost", "ExecStop"):
        for value in unit.get(key):
            # prefixes (-@:+!), then $$ is systemd's literal $
            argv = shlex.split(value.lstrip("-@:+!").replace("$$", "$"))
            yield from _argvs_of(argv, [], env, bulkcopy_image=False)


def units() -> list[Unit]:
    return [read_unit(p) for p in sorted(SYSTEMD.glob("*.service"))]


def all_invocations() -> list[Invocation]:
    """Every bulkcopy command line in deploy/."""
    found: list[Invocation] = []

    def add(where: str, argvs: Iterator[list[str]]) -> None:
        found.extend(Invocation(where, tuple(a)) for a in argvs)

    services = compose()["services"]
    for name, service in services.items():
        env = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        entrypoint = _as_list(service.get("entrypoint"))
        add(
            f"compose.yaml:{name}",
            _argvs_of(
                entrypoint,
                _as_list(service.get("command")),
                env,
                _compose_uses_image(service),
            ),
        )
    for name, _, container in k8s_containers():
        add(f"k8s/{name}:{container['name']}", iter(_container_argvs(container)))
    for unit in units():
        add(f"systemd/{unit.path.name}", exec_argvs(unit))
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and path.suffix in ("", ".yaml", ".service", ".timer"):
            rel = path.relative_to(DEPLOY)
            add(f"{rel} (comments)", bulkcopy_argvs(commented_code(path.read_text())))
    add("README.md", bulkcopy_argvs(readme_code((DEPLOY / "README.md").read_text())))
    return found


INVOCATIONS = all_invocations()


# -- the CLI's parser ----------------------------------------------------------


def parse(argv: tuple[str, ...]) -> click.Context:
    """Parse ``bulkcopy ARGV`` with the real click commands, invoking nothing;
    return the subcommand's context (``.command``, ``.params``)."""
    args = list(argv)
    group_ctx = cli.make_context("bulkcopy", list(args), resilient_parsing=False)
    name, command, rest = cli.resolve_command(group_ctx, args)
    assert command is not None
    assert name is not None
    return command.make_context(name, rest, parent=group_ctx)


def _cli_envvars() -> set[str]:
    names: set[str] = set()
    for name in cli.list_commands(click.Context(cli)):
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            if isinstance(envvar, str):
                names.add(envvar)
            elif envvar:
                names.update(envvar)
    return names


def _has_placeholder(value: Any) -> bool:
    if isinstance(value, str):
        return PLACEHOLDER in value
    if isinstance(value, (tuple, list)):
        return any(_has_placeholder(v) for v in value)
    return False


# -- YAML -------------------------------------------------------------------------


YAML_FILES = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))


@pytest.mark.parametrize(
    "path", YAML_FILES, ids=[str(p.relative_to(DEPLOY)) for p in YAML_FILES]
)
def test_every_yaml_document_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} holds no YAML document"
    for doc in docs:
        assert isinstance(doc, dict)
        if path.is_relative_to(K8S):
            assert {"apiVersion", "kind", "metadata"} <= doc.keys(), path.name


def test_the_examples_exist() -> None:
    for name in (
        "Dockerfile",
        "compose.yaml",
        "README.md",
        "demo/manifest.csv",
        "k8s/secret.yaml",
        "k8s/serviceaccount.yaml",
        "k8s/job.yaml",
        "k8s/cronjob.yaml",
        "systemd/bulkcopy-worker.service",
        "systemd/bulkcopy-migration.service",
        "systemd/bulkcopy-migration.timer",
    ):
        assert (DEPLOY / name).is_file(), name
    assert (ROOT / ".dockerignore").is_file()


# -- command lines ------------------------------------------------------------------


@pytest.mark.parametrize(
    "inv", INVOCATIONS, ids=[f"{i.where}:{' '.join(i.argv)[:60]}" for i in INVOCATIONS]
)
def test_command_line_is_accepted_by_the_cli(inv: Invocation) -> None:
    if {"--help", "-h", "--version"} & set(inv.argv):
        # eager options that print and exit: the command must exist
        if inv.argv[0] not in ("--help", "-h", "--version"):
            assert cli.get_command(click.Context(cli), inv.argv[0]) is not None, inv
        return
    try:
        ctx = parse(inv.argv)
    except click.UsageError as exc:  # NoSuchOption, BadParameter, no such command
        pytest.fail(
            f"{inv.where}: bulkcopy {shlex.join(inv.argv)}: {exc.format_message()}"
        )
    params = ctx.params
    if ctx.command.name in ("submit", "copy") and not _has_placeholder(params):
        # what submit itself checks before touching S3 or the database: the
        # destination, the options and their combinations, the source's kind
        with ctx:
            build_spec(params)
            manifest = str(params.get("manifest") or "")
            if manifest.startswith("s3://") or params.get("from_"):
                build_source(params)


def test_command_lines_are_found_where_expected() -> None:
    """The extraction above finds the commands it should, so a test that
    passes is not one that looked at nothing."""
    by_file: dict[str, set[str]] = {}
    for inv in INVOCATIONS:
        by_file.setdefault(inv.where.split(":")[0], set()).add(inv.command)
    expected = {
        "compose.yaml": {"worker"},
        "k8s/job.yaml": {"worker"},
        "k8s/submit-job.yaml": {"submit"},
        "k8s/cronjob.yaml": {"submit", "worker"},
        "k8s/worker-deployment.yaml": {"worker"},
        "systemd/bulkcopy-worker.service": {"worker"},
        "systemd/bulkcopy-migration.service": {"submit", "worker", "report"},
        "README.md": {"submit", "status", "pause", "resume", "report", "jobs"},
        "k8s/job.yaml (comments)": {"submit", "status"},
        "compose.yaml (comments)": {"submit", "status"},
        "Dockerfile (comments)": {"--help", "worker"},
    }
    for where, commands in expected.items():
        assert commands <= by_file.get(where, set()), (where, by_file.get(where))


def test_a_bad_option_would_be_caught() -> None:
    """The parser used above rejects what the CLI rejects."""
    with pytest.raises(click.NoSuchOption):
        parse(("worker", "--folow"))
    with pytest.raises(click.BadParameter):
        parse(("submit", "m.csv", "--to", "s3://d/", "--addressing-style", "paht"))
    with pytest.raises(click.UsageError):
        parse(("wroker",))
    script = (
        'JOB=$(bulkcopy submit "$M" --to s3://d/ 2>/dev/null)'
        ' && exec bulkcopy worker --job "$JOB"'
    )
    assert list(bulkcopy_argvs(script, {"M": "s3://m/x.csv"})) == [
        ["submit", "s3://m/x.csv", "--to", "s3://d/"],
        ["worker", "--job", PLACEHOLDER],
    ]


# -- the pieces agree -----------------------------------------------------------


def _final_stage(dockerfile: str) -> list[str]:
    lines = [
        line.strip()
        for line in dockerfile.replace("\\\n", " ").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    starts = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    assert len(starts) >= 1
    return lines[starts[-1] :]


def _dockerfile_uid() -> str:
    final = _final_stage(DOCKERFILE.read_text())
    users = [
        line.split(None, 1)[1] for line in final if line.upper().startswith("USER ")
    ]
    assert users, "the final stage sets no USER"
    return users[-1].split(":")[0]


def test_dockerfile_runs_bulkcopy_as_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    final = _final_stage(text)
    uid = _dockerfile_uid()
    assert uid not in ("0", "root")
    assert uid.isdigit(), "numeric USER, so that runAsNonRoot can check it"
    assert 'ENTRYPOINT ["bulkcopy"]' in final
    assert any(line.startswith("CMD ") for line in final)
    assert any("PYTHONUNBUFFERED=1" in line for line in final)
    assert (
        "ARG PYTHON_IMAGE=python:3.11-slim" in text or "FROM python:3.11-slim" in text
    )
    # no compiler or build tools installed in the image that ships
    assert not re.search(r"build-essential|\bgcc\b|apt-get install", "\n".join(final))
    # installs the project by its name
    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    assert any(re.search(rf"pip install .*\b{name}\b", line) for line in final)


def test_dockerfile_copies_what_the_wheel_needs_and_dockerignore_keeps_it() -> None:
    text = DOCKERFILE.read_text()
    copied = re.findall(r"^COPY\s+(?!--from)(.+?)\s+\S+$", text, flags=re.M)
    sources = {s.rstrip("/") for line in copied for s in line.split()}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    needed |= {p.rstrip("*") for p in packages}  # engine, migrations (package data)
    assert needed <= sources, needed - sources
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for source in sources:
        for pattern in ignored:
            assert not fnmatch.fnmatch(source, pattern.lstrip("/")), (source, pattern)
        assert (ROOT / source).exists(), source
    for must in (".git", ".venv", "*.db", "bench/results", ".pytest_cache"):
        assert must in ignored, must


def test_the_database_variable_is_the_one_the_cli_reads() -> None:
    worker = cli.get_command(click.Context(cli), "worker")
    assert worker is not None
    db = next(p for p in worker.params if p.name == "db")
    assert db.envvar == "BULKCOPY_DB"
    known = _cli_envvars()
    names: set[str] = set()
    for service in compose()["services"].values():
        names |= set((service.get("environment") or {}).keys())
    for _, _, container in k8s_containers():
        names |= {e["name"] for e in container.get("env", [])}
    names |= set(read_env_file(SYSTEMD / "env.example"))
    assert "BULKCOPY_DB" in names
    unknown = {n for n in names if n.startswith("BULKCOPY") and n not in known}
    assert not unknown, f"variables bulkcopy does not read: {unknown}"


def test_pods_run_as_non_root_with_a_read_only_root() -> None:
    uid = int(_dockerfile_uid())
    specs = 0
    for name, doc in k8s_documents():
        for spec in _pod_specs(doc):
            specs += 1
            security = spec.get("securityContext", {})
            assert security.get("runAsNonRoot") is True, name
            assert security.get("runAsUser", uid) == uid, name
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            for container in spec["containers"]:
                ctx = container.get("securityContext", {})
                assert ctx.get("readOnlyRootFilesystem") is True, name
                assert ctx.get("allowPrivilegeEscalation") is False, name
                mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                assert "/tmp" in mounts, f"{name}: no writable /tmp"
                assert "emptyDir" in volumes[mounts["/tmp"]], name
    assert specs >= 4


def _secret() -> tuple[str, set[str]]:
    docs = [d for _, d in k8s_documents() if d["kind"] == "Secret"]
    assert len(docs) == 1
    secret = docs[0]
    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    return secret["metadata"]["name"], keys


def test_pods_use_the_keys_the_secret_defines() -> None:
    name, keys = _secret()
    runners = 0
    for file, _, container in k8s_containers():
        env = {e["name"]: e for e in container.get("env", [])}
        for entry in env.values():
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == name, (file, entry["name"])
                assert ref["key"] in keys, (file, entry["name"], ref["key"])
        if _runs_bulkcopy(container):
            runners += 1
            db = env["BULKCOPY_DB"]["valueFrom"]["secretKeyRef"]
            assert db["key"] in keys, file
            assert not db.get("optional"), file
            for aws in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                if aws in env:  # static keys are the fallback to IRSA
                    assert env[aws]["valueFrom"]["secretKeyRef"].get("optional"), file
    assert runners >= 4
    for kind in ("Job", "CronJob"):
        assert any(d["kind"] == kind for _, d in k8s_documents()), kind


def test_pods_use_the_service_account_with_an_irsa_role() -> None:
    accounts = [d for _, d in k8s_documents() if d["kind"] == "ServiceAccount"]
    assert len(accounts) == 1
    account = accounts[0]
    annotation = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert annotation.startswith("arn:aws:iam::")
    for name, doc in k8s_documents():
        for spec in _pod_specs(doc):
            assert spec.get("serviceAccountName") == account["metadata"]["name"], name


def _worker_argvs(where: str) -> list[tuple[str, ...]]:
    return [
        i.argv
        for i in INVOCATIONS
        if i.where.startswith(where) and i.command == "worker"
    ]


def test_one_off_pods_leave_and_standing_pools_follow() -> None:
    """A Job's worker without --follow ends; a pool's with --follow waits
    (without it, Deployment pods exit 0 and restart in a loop)."""
    for where in ("k8s/job.yaml:", "k8s/cronjob.yaml:"):
        argvs = _worker_argvs(where)
        assert argvs, where
        assert all("--follow" not in a for a in argvs), where
    for where in (
        "k8s/worker-deployment.yaml:",
        "compose.yaml:worker",
        "systemd/bulkcopy-worker.service",
    ):
        argvs = _worker_argvs(where)
        assert argvs, where
        assert all("--follow" in a for a in argvs), where


def test_kubernetes_jobs_restart_on_failure_and_drain() -> None:
    docs = {d["kind"]: d for _, d in k8s_documents() if d["kind"] in ("Job", "CronJob")}
    jobs = [d for _, d in k8s_documents() if d["kind"] == "Job"]
    move = next(j for j in jobs if j["metadata"]["name"] == "bulkcopy-move")
    spec = move["spec"]
    assert spec["parallelism"] >= 1
    assert spec.get("completions", 1) >= 1
    assert "backoffLimit" in spec
    assert spec["template"]["spec"]["restartPolicy"] == "OnFailure"
    cron = docs["CronJob"]["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    for _, doc in k8s_documents():
        for pod in _pod_specs(doc):
            if any(_runs_worker(c) for c in pod["containers"]):
                # SIGTERM: finish the copies in flight; the default 30 s is short
                assert pod.get("terminationGracePeriodSeconds", 30) >= 120, doc["kind"]
    # the CronJob's shell hands PID 1 to bulkcopy, so SIGTERM reaches it
    script = "\n".join(
        str(a)
        for _, _, c in k8s_containers()
        for a in c.get("args", [])
        if "\n" in str(a)
    )
    assert re.search(r"^\s*exec bulkcopy worker --job\b", script, flags=re.M)


def test_compose_services_fit_together() -> None:
    data = compose()
    services = data["services"]
    assert {"postgres", "minio", "minio-init", "worker", "cli"} <= services.keys()
    for name in ("postgres", "minio"):
        assert "healthcheck" in services[name], name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    worker = services["worker"]
    assert worker["deploy"]["replicas"] >= 1
    assert "container_name" not in worker  # --scale needs generated names
    conditions = {k: v["condition"] for k, v in worker["depends_on"].items()}
    assert conditions["postgres"] == "service_healthy"
    assert conditions["minio-init"] == "service_completed_successfully"
    env = worker["environment"]
    assert env["BULKCOPY_DB"].startswith("postgresql://")
    assert env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
    minio_env = services["minio"]["environment"]
    assert env["AWS_ACCESS_KEY_ID"] == minio_env["MINIO_ROOT_USER"]
    assert env["AWS_SECRET_ACCESS_KEY"] == minio_env["MINIO_ROOT_PASSWORD"]
    assert services["cli"]["profiles"] == ["tools"]
    assert services["cli"]["environment"] == env
    for name in ("worker", "cli"):
        build = services[name]["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT, name
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE, name
    for volume in services["cli"].get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("."):
            assert (DEPLOY / source).is_dir(), volume
        else:
            assert source in data["volumes"], volume


def test_demo_manifest_lists_the_objects_the_demo_uploads() -> None:
    entries = list(read_csv_manifest(str(DEPLOY / "demo" / "manifest.csv")))
    assert entries
    assert all(e.error is None for e in entries)
    init = compose()["services"]["minio-init"]
    script = "\n".join(_as_list(init.get("command")))
    made = set()
    uploaded = set()
    for words in simple_commands(script.replace("$$", "$")):
        if words[:2] == ["mc", "mb"]:
            made |= {w.split("/", 1)[1] for w in words[2:] if not w.startswith("-")}
        if words[:2] == ["mc", "pipe"]:
            uploaded.add(words[2].split("/", 1)[1])
    assert {"src", "dst"} <= made
    for entry in entries:
        assert f"{entry.src.bucket}/{entry.src.key}" in uploaded, entry
    # and the README's demo submit copies into a bucket the demo created
    demo = [
        i
        for i in INVOCATIONS
        if i.where == "README.md" and "/demo/manifest.csv" in i.argv
    ]
    assert demo
    for inv in demo:
        params = parse(inv.argv).params
        assert params["to"].split("/")[2] in made
        assert params["addressing_style"] == "path"  # MinIO


def _seconds(span: str) -> float:
    """A systemd time span such as ``10min``, ``90s``, ``2min 30s``, ``600``."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+)\s*([a-z]*)", span)
    assert parts, span
    return sum(int(n) * units[u] for n, u in parts)


def test_systemd_units() -> None:
    worker = read_unit(SYSTEMD / "bulkcopy-worker.service")
    assert worker.one("Restart") == "on-failure"
    assert worker.one("KillSignal") == "SIGTERM"
    assert worker.one("User") == "bulkcopy"
    assert "/etc/bulkcopy/env" in worker.get("EnvironmentFile")
    assert worker.one("NoNewPrivileges") == "yes"
    assert worker.one("ProtectSystem") == "strict"
    assert worker.get("StateDirectory")
    assert "130" in worker.one("SuccessExitStatus").split()
    assert _seconds(worker.one("TimeoutStopSec")) >= 120

    migration = read_unit(SYSTEMD / "bulkcopy-migration.service")
    assert migration.one("Type") == "oneshot"
    for path in migration.get("EnvironmentFile") + worker.get("EnvironmentFile"):
        assert path.lstrip("-") in ENV_FILES, path
    timer = read_unit(SYSTEMD / "bulkcopy-migration.timer")
    assert timer.one("OnCalendar")
    assert timer.one("Persistent") == "true"
    assert timer.one("RandomizedDelaySec")
    unit = timer.get("Unit") or ["bulkcopy-migration.service"]
    assert (SYSTEMD / unit[0]).is_file()
    # the migration's script uses only variables systemd or its files define
    for inv in INVOCATIONS:
        if (
            inv.where == "systemd/bulkcopy-migration.service"
            and inv.command == "submit"
        ):
            assert not any(PLACEHOLDER in a for a in inv.argv), inv.argv


def test_submit_prints_only_the_job_id(tmp_path: Path) -> None:
    """The scripts capture `bulkcopy submit`'s stdout as the job id
    (JOB=$(bulkcopy submit …)); it must be that and nothing else."""
    env = {**os.environ, "BULKCOPY_DB": str(tmp_path / "jobs.db")}
    argv = [
        sys.executable,
        "-m",
        "engine",
        "submit",
        str(DEPLOY / "demo" / "manifest.csv"),
        "--to",
        "s3://dst/copied/",
        "--no-stat-source",
        "--addressing-style",
        "path",
        "--priority",
        "10",
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    job = done.stdout.strip()
    assert done.stdout == job + "\n", done.stdout
    assert re.fullmatch(r"[\w.-]+", job), done.stdout
    status = subprocess.run(
        [sys.executable, "-m", "engine", "status", job, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0, status.stderr
    assert f'"job_id": "{job}"' in status.stdout

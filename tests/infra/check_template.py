#!/usr/bin/env python3
"""Offline checks of the SAM template (infra/template.yaml).

Run from the repository root with the project venv:

    .venv/bin/python tests/infra/check_template.py [--template FILE] [--routes-file FILE]
    .venv/bin/python tests/infra/check_template.py --self-test

What it checks, in order (every step runs; the exit code is 1 if any failed):

1. cfn-lint on the SAM template (schema, SAM resource properties).
2. The SAM transform, offline, with aws-sam-translator (local CodeUri values replaced by an
   s3:// placeholder, a managed-policy loader that returns {}), then cfn-lint on the
   CloudFormation output: that is what catches a !Ref to a missing resource, a bad
   schedule expression or an unknown runtime, which cfn-lint misses on the SAM source.
3. IAM: every Action and Resource of every policy statement in the template. A wildcard
   (an action containing '*', a resource that is or contains '*', NotAction, NotResource)
   fails unless the line carrying it, or the line just above, has a YAML comment with
   'justified: <reason>'. SAM policy templates and managed policies in a function's
   Policies fail the same way; the transformed roles may carry no managed policy other
   than AWSLambdaBasicExecutionRole.
4. Functions: BuildMethod rust-cargolambda with a Binary that is a binary of the cargo
   workspace at CodeUri; after the transform (so Globals are applied as SAM applies
   them): runtime provided.al2023, JSON log format, a log group of this template with a
   retention, the shared environment variables; an alarm on its Errors and Throttles.
5. HTTP API: every HttpApi event is attached to an HttpApi of this template whose default
   authorizer is a JWT authorizer, no route opts out of it, access logs are on.
6. Routes: prints the set of 'METHOD /path' routes; with --routes-file (a JSON list of
   'METHOD /path' strings, e.g. the local API's route table), checks both sets are equal.
7. Follow-up workers: for each allowed value N of the FollowWorkers parameter, the
   conditions evaluated, exactly N schedules target the status-sync function, their inputs
   name workers 0..N-1 once each, all with "workers": N, the same expression, role, retry
   policy and dead-letter queue; the function has no schedule event of its own and its
   reserved concurrency is FollowWorkers.

Exit codes: 0 all checks passed, 1 a check failed, 2 usage or environment error.
"""

from __future__ import annotations

import argparse
import copy
import glob
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO_ROOT / "infra" / "template.yaml"
VENV_BIN = Path(sys.executable).parent

REQUIRED_ENV_VARS = (
    "TABLE_NAME",
    "SECRET_PREFIX",
    "PASSWORD_LIFETIME_DAYS",
    "DEFAULT_ENVIRONMENT",
    "CHORUS_API_URL",
    "PISTE_TOKEN_URL",
    "PISTE_CREDENTIALS_SECRET",
)
EXPECTED_RUNTIME = "provided.al2023"
EXPECTED_BUILD_METHOD = "rust-cargolambda"
# Managed policies SAM may attach by itself; anything else must be an inline statement.
ALLOWED_MANAGED_POLICIES = ("AWSLambdaBasicExecutionRole",)
S3_PLACEHOLDER = "s3://offline-check-placeholder/{name}.zip"
# Properties of SAM resources that point at local files and that `sam package` would upload.
LOCAL_URI_PROPERTIES = {
    "AWS::Serverless::Function": ("CodeUri",),
    "AWS::Serverless::LayerVersion": ("ContentUri",),
    "AWS::Serverless::Api": ("DefinitionUri",),
    "AWS::Serverless::HttpApi": ("DefinitionUri",),
    "AWS::Serverless::StateMachine": ("DefinitionUri",),
}
JUSTIFIED = re.compile(r"justified:\s*\S")


class CheckFailed(Exception):
    """A check found a problem; the message says which and where."""


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)

    def ok(self, what: str) -> None:
        print(f"  ok    {what}")

    def fail(self, what: str) -> None:
        print(f"  FAIL  {what}")
        self.failures.append(what)

    def info(self, what: str) -> None:
        print(f"        {what}")


# --------------------------------------------------------------------------------------
# Loading


def load_template(path: Path) -> tuple[dict, list[str]]:
    """The template as a dict (intrinsics in their long form, strings carrying their
    position) and its raw lines, for the comments PyYAML drops."""
    from cfnlint.decode import cfn_yaml  # ships with cfn-lint; understands !Ref, !Sub, ...

    text = path.read_text(encoding="utf-8")
    return load_template_text(text, str(path)), text.splitlines()


def load_template_text(text: str, name: str = "<template>") -> dict:
    from cfnlint.decode import cfn_yaml

    template = cfn_yaml.loads(text, name)
    if not isinstance(template, dict):
        raise CheckFailed(f"{name}: not a mapping at the top level")
    return template


def plain(value: Any) -> Any:
    """Drop cfn-lint's node classes: plain dicts, lists and strings."""
    return json.loads(json.dumps(value))


def resources(template: dict) -> dict:
    res = template.get("Resources") or {}
    return res if isinstance(res, dict) else {}


def resources_of_type(template: dict, type_: str) -> Iterator[tuple[str, dict]]:
    for name, res in resources(template).items():
        if isinstance(res, dict) and res.get("Type") == type_:
            yield name, res


def ref_target(value: Any) -> str | None:
    """'X' for {'Ref': 'X'} or {'Fn::GetAtt': ['X', ...]} / 'X.Attr', else None."""
    if isinstance(value, dict) and len(value) == 1:
        if "Ref" in value and isinstance(value["Ref"], str):
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            if isinstance(att, list) and att:
                return str(att[0])
            if isinstance(att, str):
                return att.split(".", 1)[0]
    return None


# --------------------------------------------------------------------------------------
# 1 and 2: cfn-lint, SAM transform


def cfn_lint_executable() -> Path:
    exe = VENV_BIN / "cfn-lint"
    if not exe.exists():
        raise CheckFailed(
            f"cfn-lint not found next to the interpreter ({exe}); run this script with the "
            "project venv: .venv/bin/python tests/infra/check_template.py"
        )
    return exe


def run_cfn_lint(path: Path, label: str, report: Report, allow_warnings: bool) -> None:
    cmd = [str(cfn_lint_executable()), "--format", "parseable",
           "--non-zero-exit-code", "informational", "--", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
    output = (proc.stdout + proc.stderr).strip()
    rc = proc.returncode
    # cfn-lint exit code: a bit mask, 2 errors, 4 warnings, 8 informational (1: crashed).
    if output:
        for line in output.splitlines():
            report.info(f"cfn-lint: {line}")
    if rc == 0:
        report.ok(f"cfn-lint {label}: no error, warning or informational finding")
    elif rc & 1 or rc & 2:
        report.fail(f"cfn-lint {label}: errors (exit code {rc})")
    elif rc & 4 and not allow_warnings:
        report.fail(f"cfn-lint {label}: warnings (exit code {rc}; --allow-warnings to accept)")
    else:
        report.ok(f"cfn-lint {label}: no error (exit code {rc}: warnings/informational only)")


class EmptyManagedPolicyLoader:
    """The translator asks IAM for managed policy ARNs by name; offline there is none."""

    def load(self) -> dict[str, str]:
        return {}


def with_s3_placeholders(template: dict) -> dict:
    """A copy where local paths (CodeUri: .., DefinitionUri: openapi.yaml) become s3:// URIs,
    as `sam package` would leave them; the translator refuses local paths."""
    out = copy.deepcopy(template)
    globals_ = out.get("Globals") or {}
    for section, props in (("Function", ("CodeUri",)), ("Api", ("DefinitionUri",)),
                           ("HttpApi", ("DefinitionUri",))):
        g = globals_.get(section)
        if isinstance(g, dict):
            for prop in props:
                if isinstance(g.get(prop), str) and not g[prop].startswith("s3://"):
                    g[prop] = S3_PLACEHOLDER.format(name=f"globals-{section.lower()}")
    for name, res in resources(out).items():
        props = res.get("Properties") if isinstance(res, dict) else None
        if not isinstance(props, dict):
            continue
        for prop in LOCAL_URI_PROPERTIES.get(res.get("Type"), ()):
            value = props.get(prop)
            if isinstance(value, str) and not value.startswith("s3://"):
                props[prop] = S3_PLACEHOLDER.format(name=name)
    return out


def sam_transform(template: dict) -> dict:
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-3")
    # Its metrics object warns, when garbage-collected, that nothing published them.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform

    try:
        return transform(plain(with_s3_placeholders(template)), {}, EmptyManagedPolicyLoader())
    except InvalidDocumentException as exc:
        causes = "; ".join(str(c) for c in getattr(exc, "causes", [])) or str(exc)
        raise CheckFailed(f"SAM transform refused the template: {causes}") from exc


# --------------------------------------------------------------------------------------
# 3: IAM


def yaml_comment(line: str) -> str | None:
    """The comment of one YAML line: a '#' at the start or after a blank, outside quotes."""
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[i + 1 :]
    return None


def is_justified(lines: list[str], line0: int | None) -> bool:
    """A 'justified: <reason>' comment on that (0-based) line or the one just above."""
    if line0 is None:
        return False
    for n in (line0, line0 - 1):
        if 0 <= n < len(lines):
            comment = yaml_comment(lines[n])
            if comment is not None and JUSTIFIED.search(comment):
                return True
    return False


def line_of(node: Any, fallback: int | None) -> int | None:
    mark = getattr(node, "start_mark", None)
    line = getattr(mark, "line", None)
    return line if isinstance(line, int) else fallback


def leaf_strings(value: Any, line: int | None = None) -> Iterator[tuple[str, int | None]]:
    """Every string under value (intrinsics included) with the line of the nearest node that
    knows its position."""
    line = line_of(value, line)
    if isinstance(value, str):
        yield value, line
    elif isinstance(value, dict):
        for v in value.values():
            yield from leaf_strings(v, line)
    elif isinstance(value, list):
        for v in value:
            yield from leaf_strings(v, line)


def policy_statements(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every policy statement anywhere under value: a mapping with a 'Statement' key whose
    items carry Effect/Action/Resource (identity and resource policies alike)."""
    if isinstance(value, dict):
        statements = value.get("Statement")
        items = statements if isinstance(statements, list) else [statements]
        if isinstance(statements, (list, dict)) and (
            "Version" in value or any(isinstance(s, dict) and "Effect" in s for s in items)
        ):
            for i, st in enumerate(items):
                if isinstance(st, dict):
                    sid = st.get("Sid")
                    yield f"{where}.Statement[{sid if sid else i}]", st
        for k, v in value.items():
            if k != "Statement":
                yield from policy_statements(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from policy_statements(v, f"{where}[{i}]")


def iam_findings(template: dict, lines: list[str]) -> tuple[list[str], list[str]]:
    """(problems, notes) of the IAM check on a loaded template and its raw lines."""
    problems: list[str] = []
    notes: list[str] = []
    checked = 0

    for name, res in resources(template).items():
        if not isinstance(res, dict):
            continue
        props = res.get("Properties") or {}
        # SAM functions: Policies entries other than inline documents are too broad to review.
        if res.get("Type") in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            policies = props.get("Policies")
            entries = policies if isinstance(policies, list) else [policies] if policies else []
            for i, entry in enumerate(entries):
                inline = isinstance(entry, dict) and "Statement" in entry
                if inline:
                    continue
                ln = line_of(entry, line_of(policies, None))
                label = f"{name}.Policies[{i}] ({plain(entry)!r}, line {ln + 1 if ln is not None else '?'})"
                if is_justified(lines, ln):
                    notes.append(f"justified managed policy / policy template: {label}")
                else:
                    problems.append(
                        f"{label}: managed policy or SAM policy template; write inline "
                        "statements, or add a 'justified:' comment"
                    )

        for where, st in policy_statements(res, name):
            checked += 1
            for key in ("NotAction", "NotResource"):
                if key in st:
                    ln = line_of(st[key], line_of(st, None))
                    if not is_justified(lines, ln):
                        problems.append(f"{where}: {key} grants everything else (line "
                                        f"{ln + 1 if ln is not None else '?'}); add a 'justified:' comment")
            for key, kind in (("Action", "action"), ("Resource", "resource")):
                if key not in st:
                    continue
                for text, ln in leaf_strings(st[key], line_of(st, None)):
                    if "*" not in text:
                        continue
                    where_line = f"line {ln + 1}" if ln is not None else "line ?"
                    if is_justified(lines, ln):
                        notes.append(f"justified wildcard {kind} {text!r} ({where}, {where_line})")
                    else:
                        problems.append(
                            f"{where}: wildcard {kind} {text!r} at {where_line} without a "
                            "'justified: <reason>' comment on that line or the line above"
                        )
    notes.insert(0, f"{checked} policy statement(s) examined")
    return problems, notes


def check_iam(template: dict, lines: list[str], report: Report) -> None:
    problems, notes = iam_findings(template, lines)
    for n in notes:
        report.info(n)
    for p in problems:
        report.fail(f"IAM: {p}")
    if not problems:
        report.ok("IAM: no unjustified wildcard action or resource, no policy template")


def check_transformed_roles(cfn: dict, report: Report) -> None:
    bad = []
    for name, res in resources_of_type(cfn, "AWS::IAM::Role"):
        for arn in (res.get("Properties") or {}).get("ManagedPolicyArns") or []:
            text = json.dumps(arn)
            if not any(text.rstrip('"').endswith(f"/{p}") or f"/{p}\"" in text
                       for p in ALLOWED_MANAGED_POLICIES):
                bad.append(f"{name}: managed policy {text}")
    for b in bad:
        report.fail(f"IAM (transformed): {b}; only {', '.join(ALLOWED_MANAGED_POLICIES)} is allowed")
    if not bad:
        report.ok(f"IAM (transformed): roles carry no managed policy beyond "
                  f"{', '.join(ALLOWED_MANAGED_POLICIES)}")


# --------------------------------------------------------------------------------------
# 4: functions


def workspace_binaries(workspace: Path) -> set[str]:
    """Binary names of the cargo workspace (or single crate) at that path."""
    manifest = tomllib.loads((workspace / "Cargo.toml").read_text(encoding="utf-8"))
    crate_dirs = [workspace]
    for pattern in (manifest.get("workspace") or {}).get("members") or []:
        crate_dirs += [Path(p) for p in glob.glob(str(workspace / pattern))]
    bins: set[str] = set()
    for crate in crate_dirs:
        path = crate / "Cargo.toml"
        if not path.is_file():
            continue
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        package = data.get("package") or {}
        for b in data.get("bin") or []:
            if b.get("name"):
                bins.add(b["name"])
        if package.get("name") and (crate / "src" / "main.rs").is_file():
            bins.add(package["name"])
        bins.update(p.stem for p in (crate / "src" / "bin").glob("*.rs"))
    return bins


def check_functions(template: dict, cfn: dict | None, template_path: Path, report: Report) -> None:
    functions = dict(resources_of_type(template, "AWS::Serverless::Function"))
    if not functions:
        report.fail("functions: the template declares no AWS::Serverless::Function")
        return
    raw_lambdas = [n for n, _ in resources_of_type(template, "AWS::Lambda::Function")]
    for n in raw_lambdas:
        report.fail(f"{n}: plain AWS::Lambda::Function; declare it as AWS::Serverless::Function")

    template_res = resources(template)
    globals_fn = ((template.get("Globals") or {}).get("Function")) or {}
    alarms = alarm_metrics_by_function(template)

    for name, res in functions.items():
        props = res.get("Properties") or {}
        meta = res.get("Metadata") or {}
        problems: list[str] = []

        if meta.get("BuildMethod") != EXPECTED_BUILD_METHOD:
            problems.append(f"Metadata.BuildMethod is {meta.get('BuildMethod')!r}, "
                            f"expected {EXPECTED_BUILD_METHOD!r}")
        binary = (meta.get("BuildProperties") or {}).get("Binary")
        code_uri = props.get("CodeUri", globals_fn.get("CodeUri"))
        if not isinstance(binary, str) or not binary:
            problems.append("Metadata.BuildProperties.Binary is missing")
        if not isinstance(code_uri, str):
            problems.append(f"CodeUri is {code_uri!r}, expected the cargo workspace path")
        else:
            workspace = (template_path.parent / code_uri).resolve()
            if not (workspace / "Cargo.toml").is_file():
                problems.append(f"CodeUri {code_uri!r} -> {workspace} has no Cargo.toml")
            elif isinstance(binary, str) and binary:
                try:
                    bins = workspace_binaries(workspace)
                except (OSError, tomllib.TOMLDecodeError) as exc:
                    problems.append(f"cannot read the cargo workspace at {workspace}: {exc}")
                else:
                    if binary not in bins:
                        problems.append(f"binary {binary!r} is not built by the workspace at "
                                        f"{workspace} (binaries: {', '.join(sorted(bins)) or 'none'})")

        # Runtime, logging and environment as CloudFormation will see them (Globals applied).
        fn = (resources(cfn).get(name) if cfn else None) or {}
        if cfn is None:
            problems.append("not checked after the transform (the transform failed)")
        elif fn.get("Type") != "AWS::Lambda::Function":
            problems.append("no AWS::Lambda::Function of that name in the transformed template")
        else:
            fprops = fn.get("Properties") or {}
            if fprops.get("Runtime") != EXPECTED_RUNTIME:
                problems.append(f"Runtime is {fprops.get('Runtime')!r}, expected {EXPECTED_RUNTIME!r}")
            logging_config = fprops.get("LoggingConfig") or {}
            if logging_config.get("LogFormat") != "JSON":
                problems.append(f"LoggingConfig.LogFormat is {logging_config.get('LogFormat')!r}, expected 'JSON'")
            group = ref_target(logging_config.get("LogGroup"))
            group_res = template_res.get(group) if group else None
            if not group_res or group_res.get("Type") != "AWS::Logs::LogGroup":
                problems.append("LoggingConfig.LogGroup must !Ref an AWS::Logs::LogGroup of this "
                                f"template (found {logging_config.get('LogGroup')!r})")
            elif "RetentionInDays" not in (group_res.get("Properties") or {}):
                problems.append(f"log group {group} has no RetentionInDays")
            variables = ((fprops.get("Environment") or {}).get("Variables")) or {}
            missing = [v for v in REQUIRED_ENV_VARS if v not in variables]
            if missing:
                problems.append(f"environment variables missing: {', '.join(missing)}")

        metrics = alarms.get(name, set())
        for metric in ("Errors", "Throttles"):
            if metric not in metrics:
                problems.append(f"no CloudWatch alarm on its {metric} metric")

        if problems:
            for p in problems:
                report.fail(f"{name}: {p}")
        else:
            report.ok(f"{name}: {EXPECTED_BUILD_METHOD} binary {binary!r}, {EXPECTED_RUNTIME}, "
                      f"JSON logs to {group} with retention, {len(REQUIRED_ENV_VARS)} shared env "
                      "vars, alarm on Errors and Throttles")


def alarm_metrics_by_function(template: dict) -> dict[str, set[str]]:
    """Function logical id -> AWS/Lambda metric names some alarm watches for it."""
    found: dict[str, set[str]] = {}

    def add(metric: dict) -> None:
        if metric.get("Namespace") != "AWS/Lambda":
            return
        for dim in metric.get("Dimensions") or []:
            if isinstance(dim, dict) and dim.get("Name") == "FunctionName":
                target = ref_target(dim.get("Value"))
                if target:
                    found.setdefault(target, set()).add(str(metric.get("MetricName")))

    for _, alarm in resources_of_type(template, "AWS::CloudWatch::Alarm"):
        props = alarm.get("Properties") or {}
        add(props)
        for m in props.get("Metrics") or []:
            metric = ((m or {}).get("MetricStat") or {}).get("Metric")
            if isinstance(metric, dict):
                add(metric)
    return found


# --------------------------------------------------------------------------------------
# 5 and 6: HTTP API, routes


def normalise_route(route: str) -> str:
    parts = route.split()
    if len(parts) != 2:
        raise CheckFailed(f"route {route!r} is not 'METHOD /path'")
    method, path = parts
    if len(path) > 1:
        path = path.rstrip("/")
    return f"{method.upper()} {path}"


def http_routes(template: dict) -> dict[str, str]:
    """'METHOD /path' -> function logical id, from the functions' HttpApi events."""
    routes: dict[str, str] = {}
    for name, res in resources_of_type(template, "AWS::Serverless::Function"):
        for event in ((res.get("Properties") or {}).get("Events") or {}).values():
            if isinstance(event, dict) and event.get("Type") == "HttpApi":
                p = event.get("Properties") or {}
                route = normalise_route(f"{p.get('Method', 'ANY')} {p.get('Path', '$default')}")
                if route in routes:
                    raise CheckFailed(f"route {route} is declared twice ({routes[route]}, {name})")
                routes[route] = name
    return routes


def check_http_api(template: dict, report: Report) -> None:
    apis = dict(resources_of_type(template, "AWS::Serverless::HttpApi"))
    if len(apis) != 1:
        report.fail(f"HTTP API: expected exactly one AWS::Serverless::HttpApi, found {len(apis)}")
    for api_name, api in apis.items():
        props = api.get("Properties") or {}
        auth = props.get("Auth") or {}
        default = auth.get("DefaultAuthorizer")
        authorizer = (auth.get("Authorizers") or {}).get(default) if default else None
        jwt = (authorizer or {}).get("JwtConfiguration") or {}
        if not (jwt.get("issuer") and jwt.get("audience")):
            report.fail(f"{api_name}: no default JWT authorizer with issuer and audience")
        elif (authorizer or {}).get("IdentitySource") != "$request.header.Authorization":
            report.fail(f"{api_name}: the JWT authorizer must read $request.header.Authorization")
        else:
            report.ok(f"{api_name}: default authorizer {default} (JWT, issuer and audience set)")
        if not (props.get("AccessLogSettings") or {}).get("DestinationArn"):
            report.fail(f"{api_name}: access logs are off (AccessLogSettings.DestinationArn)")
        else:
            report.ok(f"{api_name}: access logs on")

    problems = []
    for name, res in resources_of_type(template, "AWS::Serverless::Function"):
        for ev_name, event in ((res.get("Properties") or {}).get("Events") or {}).items():
            if not (isinstance(event, dict) and event.get("Type") == "HttpApi"):
                continue
            p = event.get("Properties") or {}
            api = ref_target(p.get("ApiId"))
            if api not in apis:
                problems.append(f"{name}.{ev_name}: ApiId must !Ref the HttpApi of this template "
                                "(without it SAM creates an implicit API with no authorizer)")
            authz = (p.get("Auth") or {}).get("Authorizer")
            if authz is not None and authz != (apis.get(api, {}).get("Properties", {})
                                               .get("Auth", {}).get("DefaultAuthorizer")):
                problems.append(f"{name}.{ev_name}: overrides the authorizer ({authz!r}); every "
                                "route needs the JWT authorizer")
    for p in problems:
        report.fail(f"HTTP API: {p}")
    if not problems:
        report.ok("HTTP API: every HttpApi event uses the template's API and its JWT authorizer")


def check_routes(template: dict, routes_file: Path | None, report: Report) -> None:
    try:
        routes = http_routes(template)
    except CheckFailed as exc:
        report.fail(f"routes: {exc}")
        return
    report.ok(f"routes: {len(routes)} HttpApi route(s) in the template")
    for route in sorted(routes, key=lambda r: (r.split()[1], r.split()[0])):
        report.info(f"{route:55} -> {routes[route]}")
    if routes_file is None:
        return
    try:
        raw = json.loads(routes_file.read_text(encoding="utf-8"))
        if not (isinstance(raw, list) and all(isinstance(r, str) for r in raw)):
            raise CheckFailed("expected a JSON list of 'METHOD /path' strings")
        other = {normalise_route(r) for r in raw}
    except (OSError, json.JSONDecodeError, CheckFailed) as exc:
        report.fail(f"routes: cannot read {routes_file}: {exc}")
        return
    only_template = sorted(set(routes) - other)
    only_file = sorted(other - set(routes))
    if only_template or only_file:
        for r in only_template:
            report.fail(f"routes: {r} is in the template but not in {routes_file}")
        for r in only_file:
            report.fail(f"routes: {r} is in {routes_file} but not in the template")
    else:
        report.ok(f"routes: identical to {routes_file} ({len(other)} routes)")


# --------------------------------------------------------------------------------------
# 7: follow-up workers


FOLLOW_FUNCTION = "StatusSyncFunction"
FOLLOW_PARAMETER = "FollowWorkers"


def eval_condition(value: Any, conditions: dict, params: dict[str, str]) -> Any:
    """A Conditions expression (Fn::Equals, Fn::Or, Fn::And, Fn::Not, Condition, Ref to a
    parameter) with the parameters given; anything else is returned as it is."""
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref" and arg in params:
            return params[arg]
        if key == "Condition":
            return eval_condition(conditions[arg], conditions, params)
        if key == "Fn::Equals":
            a, b = (eval_condition(v, conditions, params) for v in arg)
            return str(a) == str(b)
        if key == "Fn::Or":
            return any(eval_condition(v, conditions, params) for v in arg)
        if key == "Fn::And":
            return all(eval_condition(v, conditions, params) for v in arg)
        if key == "Fn::Not":
            return not eval_condition(arg[0], conditions, params)
    return value


def substituted(value: Any, params: dict[str, str]) -> Any:
    """A string or {'Fn::Sub': string} with ${Param} replaced by the parameters given."""
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        value = value["Fn::Sub"]
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: params.get(m.group(1), m.group(0)), value)
    return value


def follow_worker_findings(template: dict) -> list[str]:
    """Problems of the follow-up workers' schedules (step 7)."""
    problems: list[str] = []
    param = ((template.get("Parameters") or {}).get(FOLLOW_PARAMETER)) or {}
    allowed = [str(v) for v in param.get("AllowedValues") or []]
    if not allowed:
        return [f"parameter {FOLLOW_PARAMETER} must list its AllowedValues (one schedule each)"]
    function = resources(template).get(FOLLOW_FUNCTION) or {}
    props = function.get("Properties") or {}
    if ref_target(props.get("ReservedConcurrentExecutions")) != FOLLOW_PARAMETER:
        problems.append(f"{FOLLOW_FUNCTION}: ReservedConcurrentExecutions must be !Ref {FOLLOW_PARAMETER}")
    for name, event in (props.get("Events") or {}).items():
        if isinstance(event, dict) and event.get("Type") in ("Schedule", "ScheduleV2"):
            problems.append(f"{FOLLOW_FUNCTION}.{name}: a schedule event names no worker; "
                            "declare one AWS::Scheduler::Schedule per worker")
    schedules = {name: res for name, res in resources_of_type(template, "AWS::Scheduler::Schedule")
                 if ref_target(((res.get("Properties") or {}).get("Target") or {}).get("Arn"))
                 == FOLLOW_FUNCTION}
    shared = set()
    for name, res in schedules.items():
        p = plain(res.get("Properties") or {})
        target = dict(p.get("Target") or {})
        target.pop("Input", None)
        shared.add(json.dumps([p.get("ScheduleExpression"), target], sort_keys=True))
    if len(shared) > 1:
        problems.append("the workers' schedules differ in expression, target, role, retries "
                        "or dead-letter queue")
    conditions = template.get("Conditions") or {}
    for n in allowed:
        params = {FOLLOW_PARAMETER: n}
        seen: list[int] = []
        for name, res in schedules.items():
            cond = res.get("Condition")
            if cond is not None and not eval_condition({"Condition": cond}, conditions, params):
                continue
            raw = substituted(((res.get("Properties") or {}).get("Target") or {}).get("Input"), params)
            try:
                body = json.loads(raw)
            except (TypeError, json.JSONDecodeError):
                problems.append(f"{name}: its input is not JSON with {FOLLOW_PARAMETER}={n}: {raw!r}")
                continue
            if str(body.get("workers")) != n:
                problems.append(f"{name}: with {FOLLOW_PARAMETER}={n} its input says "
                                f"workers {body.get('workers')!r}")
            seen.append(body.get("worker"))
        if sorted(map(str, seen)) != sorted(map(str, range(int(n)))):
            problems.append(f"with {FOLLOW_PARAMETER}={n}: the schedules' workers are "
                            f"{sorted(map(str, seen))}, expected 0 to {int(n) - 1} once each")
    return problems


def check_follow_workers(template: dict, report: Report) -> None:
    problems = follow_worker_findings(template)
    for p in problems:
        report.fail(f"follow-up workers: {p}")
    if not problems:
        report.ok("follow-up workers: one schedule per worker for every allowed "
                  f"{FOLLOW_PARAMETER}, workers 0..N-1 once each, the same N, target and retries")


# --------------------------------------------------------------------------------------


def run_checks(template_path: Path, routes_file: Path | None, allow_warnings: bool) -> int:
    report = Report()
    print(f"Checking {template_path}")
    try:
        template, lines = load_template(template_path)
    except Exception as exc:  # a YAML error: nothing else can run
        print(f"  FAIL  cannot load the template: {exc}")
        return 1
    if template.get("Transform") != "AWS::Serverless-2016-10-31":
        report.fail("Transform: AWS::Serverless-2016-10-31 is missing")

    print("\n[1] cfn-lint on the SAM template")
    run_cfn_lint(template_path, "(SAM template)", report, allow_warnings)

    print("\n[2] SAM transform (aws-sam-translator, offline), then cfn-lint on the output")
    cfn = None
    try:
        cfn = sam_transform(template)
    except CheckFailed as exc:
        report.fail(str(exc))
    if cfn is not None:
        counts: dict[str, int] = {}
        for _, res in resources(cfn).items():
            counts[res.get("Type", "?")] = counts.get(res.get("Type", "?"), 0) + 1
        report.ok("transform: " + ", ".join(f"{n} {t}" for t, n in sorted(counts.items())))
        with tempfile.TemporaryDirectory(prefix="check-template-") as tmp:
            out = Path(tmp) / "template.cfn.json"
            out.write_text(json.dumps(cfn, indent=2), encoding="utf-8")
            run_cfn_lint(out, "(transformed CloudFormation)", report, allow_warnings)

    print("\n[3] IAM")
    check_iam(template, lines, report)
    if cfn is not None:
        check_transformed_roles(cfn, report)

    print("\n[4] functions")
    check_functions(template, cfn, template_path, report)

    print("\n[5] HTTP API")
    check_http_api(template, report)

    print("\n[6] routes")
    check_routes(template, routes_file, report)

    print("\n[7] follow-up workers")
    check_follow_workers(template, report)

    print()
    if report.failures:
        print(f"FAILED: {len(report.failures)} problem(s):")
        for f in report.failures:
            print(f"  - {f}")
        return 1
    print("PASSED: all template checks")
    return 0


def self_test() -> int:
    import unittest

    here = Path(__file__).resolve().parent
    suite = unittest.defaultTestLoader.discover(str(here), pattern="test_check_template.py",
                                                top_level_dir=str(here))
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if result.wasSuccessful() else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE,
                        help=f"SAM template (default: {DEFAULT_TEMPLATE.relative_to(REPO_ROOT)})")
    parser.add_argument("--routes-file", type=Path,
                        help="JSON list of 'METHOD /path' strings the template's routes must equal")
    parser.add_argument("--allow-warnings", action="store_true",
                        help="accept cfn-lint warnings (errors still fail)")
    parser.add_argument("--self-test", action="store_true",
                        help="run the checker's own tests (tests/infra/test_check_template.py)")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    try:
        cfn_lint_executable()
    except CheckFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.template.is_file():
        print(f"error: no template at {args.template}", file=sys.stderr)
        return 2
    return run_checks(args.template.resolve(), args.routes_file, args.allow_warnings)


if __name__ == "__main__":
    sys.exit(main())

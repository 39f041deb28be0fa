#!/usr/bin/env python3
"""Every answer the tests saw is declared in infra/openapi.yaml.

The Rust tests append one JSON line per answer to `$OPENAPI_ANSWERS_FILE` (`make test` sets
it; `gateway_tests::testkit::record_answer`): `{"route", "status", "code"}`, where `route`
is a route key (`POST /v1/companies/{siret}/…`) or the method and concrete path of a local
API call. For each line whose route is in the spec, this fails when the operation does not
declare the status, or when the declared response restricts `code` (a `const` or an `enum`
beside the `Problem` schema) and the code seen is not among them. A route the spec does not
have (a hostile path a test sends on purpose) is counted, not judged: the route sets are
compared by check_routes.py.

    .venv/bin/python tests/infra/check_answers.py .local/test/openapi-answers.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = REPO_ROOT / "infra" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch")


def load_spec(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def resolve(spec: dict, node: dict) -> dict:
    """Follows a local `$ref` (`#/components/...`) until a node without one."""
    while isinstance(node, dict) and "$ref" in node:
        target: object = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target  # type: ignore[assignment]
    return node


def declared_codes(spec: dict, response: dict) -> set[str] | None:
    """The codes a response allows, or None when it does not restrict them.

    Only the `code` properties written beside the `Problem` schema count (`allOf` items and
    the schema itself); `Problem.code` refers to every code there is, so it is not followed.
    """
    codes: set[str] = set()
    restricted = False
    for media in (resolve(spec, response).get("content") or {}).values():
        schema = media.get("schema") or {}
        parts = [schema, *(schema.get("allOf") or [])]
        for part in parts:
            if "$ref" in part:
                continue
            code = (part.get("properties") or {}).get("code") or {}
            if "const" in code:
                codes.add(code["const"])
                restricted = True
            if "enum" in code:
                codes.update(code["enum"])
                restricted = True
    return codes if restricted else None


class Operations:
    """The spec's operations, found by route key or by a concrete path."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.by_key: dict[str, dict] = {}
        self.patterns: list[tuple[str, re.Pattern[str], str]] = []
        for template, item in (spec.get("paths") or {}).items():
            literal = re.split(r"\{[^/}]+\}", template)
            regex = re.compile("^" + "[^/]+".join(re.escape(part) for part in literal) + "$")
            for method in METHODS:
                if method in item:
                    key = f"{method.upper()} {template}"
                    self.by_key[key] = item[method]
                    self.patterns.append((method.upper(), regex, key))

    def find(self, route: str) -> tuple[str, dict] | None:
        if route in self.by_key:
            return route, self.by_key[route]
        method, _, path = route.partition(" ")
        path = path.split("?", 1)[0]
        # The most literal template first: `/markets` before `/{market_ref}`.
        candidates = [key for m, regex, key in self.patterns if m == method and regex.match(path)]
        if not candidates:
            return None
        key = min(candidates, key=lambda k: k.count("{"))
        return key, self.by_key[key]


def check(spec: dict, records: list[dict]) -> tuple[list[str], Counter]:
    """The faults (one line each, deduplicated) and the counts of what was judged."""
    operations = Operations(spec)
    faults: dict[str, None] = {}
    counts: Counter = Counter()
    for record in records:
        found = operations.find(record["route"])
        if found is None:
            counts["not in the spec"] += 1
            continue
        key, operation = found
        counts["checked"] += 1
        status = str(record["status"])
        code = record.get("code")
        responses = operation.get("responses") or {}
        response = responses.get(status)
        if response is None:
            seen = f"{status} {code}" if code else status
            faults[f"{key}: {seen} is answered but not declared"] = None
            continue
        allowed = declared_codes(spec, response)
        if code is not None and allowed is not None and code not in allowed:
            faults[f"{key}: {status} {code} is answered but {status} declares only {sorted(allowed)}"] = None
    return list(faults), counts


def read_records(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("answers", type=Path, help="the JSON lines the tests wrote")
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    args = parser.parse_args(argv)
    if not args.answers.is_file():
        print(f"FAIL: no answers recorded at {args.answers} (is OPENAPI_ANSWERS_FILE set for the tests?)")
        return 1
    records = read_records(args.answers)
    faults, counts = check(load_spec(args.spec), records)
    print(
        f"OpenAPI answers: {counts['checked']} checked, {counts['not in the spec']} on routes not in the spec, "
        f"{len(faults)} undeclared"
    )
    for fault in faults:
        print(f"  FAIL {fault}")
    if counts["checked"] == 0:
        print("FAIL: no answer of a spec route was recorded")
        return 1
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The three route tables must be one set: the OpenAPI spec, the SAM template, the local API.

Run from the repository root with the project venv:

    .venv/bin/python tests/infra/check_routes.py [--spec FILE] [--template FILE]
                                                 [--local-api BIN | --local-api-routes FILE]
    .venv/bin/python tests/infra/check_routes.py --self-test

Each source gives a set of 'METHOD /path' strings:

- spec: every operation (get, put, post, delete, patch, head, options, trace) of every path
  in infra/openapi.yaml;
- template: every HttpApi event of every function in infra/template.yaml, read the way
  tests/infra/check_template.py reads it (its `http_routes`);
- local API: `target/debug/local-api routes` (a JSON list), or a file holding that list.

Paths are compared after normalisation (method upper case, no trailing slash) and with path
parameters renamed by position, so that `{siret}` and `{company}` at the same place are the
same route; a parameter whose name differs between sources is still reported, as a warning.

It prints every route with the sources that have it, then each difference. Exit codes: 0 the
three sets are equal, 1 they differ (or a source declares a route twice), 2 a source could
not be read.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = REPO_ROOT / "infra" / "openapi.yaml"
DEFAULT_TEMPLATE = REPO_ROOT / "infra" / "template.yaml"
DEFAULT_LOCAL_API = REPO_ROOT / "target" / "debug" / "local-api"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
PARAM = re.compile(r"\{([^}/]+)\}")


class SourceError(Exception):
    """A source could not be read; the message says which and why."""


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as the source spells it

    @property
    def key(self) -> str:
        """The route with its parameters numbered by position: what makes two routes one."""
        counter = iter(range(1_000))
        return f"{self.method} " + PARAM.sub(lambda _: f"{{{next(counter)}}}", self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def parse_route(raw: str, where: str) -> Route:
    parts = raw.split()
    if len(parts) != 2 or not parts[1].startswith("/"):
        raise SourceError(f"{where}: {raw!r} is not 'METHOD /path'")
    method, path = parts[0].upper(), parts[1]
    if len(path) > 1:
        path = path.rstrip("/")
    return Route(method, path)


def routes_from_list(raw: list, where: str) -> list[Route]:
    if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
        raise SourceError(f"{where}: expected a JSON list of 'METHOD /path' strings")
    return [parse_route(r, where) for r in raw]


# --------------------------------------------------------------------------------------
# Sources


def spec_routes(path: Path) -> list[Route]:
    import yaml

    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SourceError(f"spec {path}: {exc}") from exc
    paths = spec.get("paths") if isinstance(spec, dict) else None
    if not isinstance(paths, dict):
        raise SourceError(f"spec {path}: no 'paths' mapping")
    routes = []
    for p, item in paths.items():
        if not isinstance(item, dict):
            raise SourceError(f"spec {path}: path item {p!r} is not a mapping")
        for method in HTTP_METHODS:
            if method in item:
                routes.append(parse_route(f"{method} {p}", f"spec {path}"))
    return routes


def template_routes(path: Path) -> list[Route]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import check_template as ct
    finally:
        sys.path.pop(0)
    try:
        template, _ = ct.load_template(path)
        found = ct.http_routes(template)
    except ct.CheckFailed as exc:
        raise SourceError(f"template {path}: {exc}") from exc
    except Exception as exc:  # cfn-lint's YAML decoder raises its own types
        raise SourceError(f"template {path}: cannot read it: {exc}") from exc
    return [parse_route(r, f"template {path}") for r in found]


def local_api_routes(binary: Path | None, routes_file: Path | None) -> list[Route]:
    if routes_file is not None:
        where = f"local API routes file {routes_file}"
        try:
            raw = json.loads(routes_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SourceError(f"{where}: {exc}") from exc
        return routes_from_list(raw, where)
    assert binary is not None
    where = f"`{binary} routes`"
    try:
        out = subprocess.run([str(binary), "routes"], capture_output=True, text=True, timeout=60, check=True)
    except FileNotFoundError as exc:
        raise SourceError(f"{where}: no such program (build it: cargo build -p gateway-tests --bins)") from exc
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"{where}: failed: {exc}") from exc
    try:
        raw = json.loads(out.stdout)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{where}: not JSON: {exc}") from exc
    return routes_from_list(raw, where)


# --------------------------------------------------------------------------------------
# Comparison


@dataclass
class Outcome:
    lines: list[str]
    differences: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.differences


def compare(sources: dict[str, list[Route]]) -> Outcome:
    names = list(sources)
    lines: list[str] = []
    differences: list[str] = []
    warnings: list[str] = []
    by_source: dict[str, dict[str, Route]] = {}
    for name, routes in sources.items():
        table: dict[str, Route] = {}
        for route in routes:
            if route.key in table:
                differences.append(f"{name}: {route} is declared twice (as {table[route.key]} too)")
            table[route.key] = route
        by_source[name] = table

    every_key = sorted(
        {k for t in by_source.values() for k in t},
        key=lambda k: (k.split(" ", 1)[1], k.split(" ", 1)[0]),
    )
    width = max([len(str(r)) for t in by_source.values() for r in t.values()] + [10])
    lines.append(f"  {'route':{width}}  " + "  ".join(f"{n:^9}" for n in names))
    for key in every_key:
        spelled = next(t[key] for t in by_source.values() if key in t)
        marks = "  ".join(f"{('yes' if key in by_source[n] else '-'):^9}" for n in names)
        lines.append(f"  {str(spelled):{width}}  {marks}")
        present = [n for n in names if key in by_source[n]]
        missing = [n for n in names if key not in by_source[n]]
        if missing:
            differences.append(f"{spelled}: in {', '.join(present)}; missing from {', '.join(missing)}")
        spellings = {str(by_source[n][key]) for n in present}
        if len(spellings) > 1:
            warnings.append(
                f"{key.split(' ', 1)[0]} route spelled differently: "
                + "; ".join(f"{n}: {by_source[n][key]}" for n in present)
            )
    totals = ", ".join(f"{n} {len(by_source[n])}" for n in names)
    lines.append(f"  routes per source: {totals}")
    return Outcome(lines, differences, warnings)


def run(spec: Path, template: Path, binary: Path | None, routes_file: Path | None) -> int:
    sources: dict[str, list[Route]] = {}
    try:
        sources["spec"] = spec_routes(spec)
        sources["template"] = template_routes(template)
        sources["local-api"] = local_api_routes(binary, routes_file)
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    outcome = compare(sources)
    print("route sets: spec (infra/openapi.yaml), template (infra/template.yaml), local API")
    print("\n".join(outcome.lines))
    for w in outcome.warnings:
        print(f"  WARN  {w}")
    if outcome.ok:
        print("PASSED: spec, template and local API have the same routes")
        return 0
    for d in outcome.differences:
        print(f"  FAIL  {d}")
    print(f"FAILED: {len(outcome.differences)} route difference(s)")
    return 1


# --------------------------------------------------------------------------------------
# Self-test


def self_test() -> int:
    import unittest

    class CompareTest(unittest.TestCase):
        def r(self, *raw: str) -> list[Route]:
            return [parse_route(x, "test") for x in raw]

        def test_equal_sets_pass_whatever_the_order_and_parameter_names(self):
            out = compare({
                "spec": self.r("GET /v1/a/{siret}", "PUT /v1/a/{siret}/"),
                "template": self.r("put /v1/a/{siret}", "GET /v1/a/{siret}"),
                "local-api": self.r("GET /v1/a/{company}", "PUT /v1/a/{siret}"),
            })
            self.assertTrue(out.ok, out.differences)
            self.assertEqual(len(out.warnings), 1)

        def test_each_missing_route_is_named_with_its_sources(self):
            out = compare({
                "spec": self.r("GET /v1/a", "POST /v1/b"),
                "template": self.r("GET /v1/a"),
                "local-api": self.r("GET /v1/a", "DELETE /v1/a"),
            })
            self.assertFalse(out.ok)
            self.assertIn("POST /v1/b: in spec; missing from template, local-api", out.differences)
            self.assertIn("DELETE /v1/a: in local-api; missing from spec, template", out.differences)
            self.assertEqual(len(out.differences), 2)

        def test_method_matters(self):
            out = compare({"spec": self.r("GET /v1/a"), "template": self.r("PUT /v1/a"), "local-api": self.r("GET /v1/a")})
            self.assertEqual(len(out.differences), 2)

        def test_a_route_declared_twice_fails(self):
            out = compare({"spec": self.r("GET /v1/a/{x}"), "template": self.r("GET /v1/a/{x}", "GET /v1/a/{y}"),
                           "local-api": self.r("GET /v1/a/{x}")})
            self.assertFalse(out.ok)

        def test_bad_route_strings_are_refused(self):
            for bad in ["GET", "GET v1/a", "GET /a /b", ""]:
                with self.assertRaises(SourceError):
                    parse_route(bad, "test")
            with self.assertRaises(SourceError):
                routes_from_list({"a": 1}, "test")

        def test_spec_operations_are_read_and_other_keys_ignored(self):
            import tempfile

            with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
                f.write("openapi: 3.1.0\npaths:\n  /v1/a/{s}:\n    parameters: []\n    summary: x\n"
                        "    get: {responses: {}}\n    delete: {responses: {}}\n")
            found = sorted(map(str, spec_routes(Path(f.name))))
            Path(f.name).unlink()
            self.assertEqual(found, ["DELETE /v1/a/{s}", "GET /v1/a/{s}"])

        def test_the_repository_spec_parses(self):
            self.assertTrue(spec_routes(DEFAULT_SPEC))

    suite = unittest.defaultTestLoader.loadTestsFromTestCase(CompareTest)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if result.wasSuccessful() else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--local-api", type=Path, default=DEFAULT_LOCAL_API,
                       help="the local-api program, asked for `routes` (default: target/debug/local-api)")
    group.add_argument("--local-api-routes", type=Path,
                       help="a file with the local API's routes (JSON list), instead of running it")
    parser.add_argument("--self-test", action="store_true", help="run this checker's own tests")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    return run(args.spec, args.template, args.local_api, args.local_api_routes)


if __name__ == "__main__":
    sys.exit(main())

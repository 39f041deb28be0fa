"""Tests of tests/infra/check_answers.py: it must really fail on an answer the spec omits.

    .venv/bin/python -m unittest discover -s tests/infra -p 'test_check_answers.py' -v
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_answers as ca  # noqa: E402

SPEC = yaml.safe_load(
    textwrap.dedent(
        """
        openapi: 3.1.0
        paths:
          /v1/companies/{siret}/things/{ref}/complete:
            post:
              responses:
                '202': {description: done}
                '422': {$ref: '#/components/responses/Refused'}
          /v1/companies/{siret}/things:
            get:
              responses:
                '200': {description: a page}
          /v1/companies/{siret}/things/{ref}:
            get:
              responses:
                '404':
                  description: not found
                  content:
                    application/problem+json:
                      schema:
                        allOf:
                          - $ref: '#/components/schemas/Problem'
                          - properties:
                              code: {const: thing_not_found}
        components:
          schemas:
            Problem:
              properties:
                code: {enum: [thing_not_found, document_not_found, idempotency_key_reused]}
          responses:
            Refused:
              description: refused
              content:
                application/problem+json:
                  schema:
                    allOf:
                      - $ref: '#/components/schemas/Problem'
                      - properties:
                          code: {enum: [idempotency_key_reused]}
        """
    )
)

COMPLETE = "POST /v1/companies/{siret}/things/{ref}/complete"


class CheckAnswers(unittest.TestCase):
    def test_a_code_the_declared_status_omits_is_a_fault(self):
        # The defect of issue 19's audit: a completion answering `422 document_not_found`
        # while the 422 response lists only other codes. `Problem.code` (every code) must
        # not count as declaring it.
        faults, counts = ca.check(SPEC, [{"route": COMPLETE, "status": 422, "code": "document_not_found"}])
        self.assertEqual(len(faults), 1, faults)
        self.assertIn("422 document_not_found", faults[0])
        self.assertIn("idempotency_key_reused", faults[0])
        self.assertEqual(counts["checked"], 1)

    def test_an_undeclared_status_is_a_fault(self):
        faults, _ = ca.check(SPEC, [{"route": COMPLETE, "status": 502, "code": "chorus_unexpected_answer"}])
        self.assertEqual(faults, [f"{COMPLETE}: 502 chorus_unexpected_answer is answered but not declared"])

    def test_declared_answers_pass_by_route_key_or_concrete_path(self):
        records = [
            {"route": COMPLETE, "status": 422, "code": "idempotency_key_reused"},
            {"route": COMPLETE, "status": 202, "code": None},
            {"route": "POST /v1/companies/81234567600017/things/t-1/complete", "status": 202, "code": None},
            {"route": "GET /v1/companies/81234567600017/things/t-1", "status": 404, "code": "thing_not_found"},
            # The literal template wins over the parameter one.
            {"route": "GET /v1/companies/81234567600017/things?limit=2", "status": 200, "code": None},
        ]
        faults, counts = ca.check(SPEC, records)
        self.assertEqual(faults, [])
        self.assertEqual(counts["checked"], 5)

    def test_a_concrete_path_is_judged_and_an_unknown_route_only_counted(self):
        records = [
            {"route": "GET /v1/companies/81234567600017/things/t-1", "status": 404, "code": "document_not_found"},
            {"route": "GET /v1/elsewhere/../x", "status": 404, "code": "not_found"},
        ]
        faults, counts = ca.check(SPEC, records)
        self.assertEqual(len(faults), 1, faults)
        self.assertIn("GET /v1/companies/{siret}/things/{ref}: 404 document_not_found", faults[0])
        self.assertEqual(counts["not in the spec"], 1)

    def test_main_fails_on_a_fault_and_on_no_record(self):
        with tempfile.TemporaryDirectory() as tmp:
            spec = Path(tmp) / "openapi.yaml"
            spec.write_text(yaml.safe_dump(SPEC), encoding="utf-8")
            answers = Path(tmp) / "answers.jsonl"
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                self.assertEqual(ca.main([str(answers), "--spec", str(spec)]), 1)
            answers.write_text(json.dumps({"route": COMPLETE, "status": 422, "code": "document_not_found"}) + "\n")
            with contextlib.redirect_stdout(out):
                self.assertEqual(ca.main([str(answers), "--spec", str(spec)]), 1)
            answers.write_text(json.dumps({"route": COMPLETE, "status": 202, "code": None}) + "\n")
            with contextlib.redirect_stdout(out):
                self.assertEqual(ca.main([str(answers), "--spec", str(spec)]), 0)


class ProblemCodesInTheSpec(unittest.TestCase):
    def test_every_code_the_gateway_defines_is_in_the_spec_enum(self):
        """`ProblemCode::as_str` (shared/src/http/problem.rs) against `ProblemCode` in the spec."""
        source = (ca.REPO_ROOT / "shared" / "src" / "http" / "problem.rs").read_text(encoding="utf-8")
        body = source[source.index("pub fn as_str(self)") : source.index("pub fn status(self)")]
        defined = set(re.findall(r'=> "([a-z_]+)"', body))
        self.assertGreater(len(defined), 20, "the codes were found in problem.rs")
        spec = ca.load_spec(ca.DEFAULT_SPEC)
        listed = set(spec["components"]["schemas"]["ProblemCode"]["enum"])
        self.assertEqual(sorted(defined - listed), [], "codes the gateway answers that the spec does not list")


if __name__ == "__main__":
    unittest.main()

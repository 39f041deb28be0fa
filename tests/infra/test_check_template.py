"""Tests of tests/infra/check_template.py: it must really fail on a bad template.

    .venv/bin/python tests/infra/check_template.py --self-test
    .venv/bin/python -m unittest discover -s tests/infra -p 'test_check_template.py' -v
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_template as ct  # noqa: E402


def iam(yaml_text: str) -> tuple[list[str], list[str]]:
    text = textwrap.dedent(yaml_text)
    return ct.iam_findings(ct.load_template_text(text), text.splitlines())


def function_with_statement(statement_yaml: str) -> str:
    """A SAM function whose only inline statement is statement_yaml (8-space indented)."""
    return (
        textwrap.dedent(
            """\
            Transform: AWS::Serverless-2016-10-31
            Resources:
              Fn:
                Type: AWS::Serverless::Function
                Properties:
                  Policies:
                    - Version: "2012-10-17"
                      Statement:
            """
        )
        + textwrap.indent(textwrap.dedent(statement_yaml), " " * 10)
    )


class IamWildcards(unittest.TestCase):
    def test_unjustified_wildcard_resource_fails(self):
        problems, _ = iam(function_with_statement("""\
            - Effect: Allow
              Action: secretsmanager:GetSecretValue
              Resource: !Sub arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:x/*
            """))
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("wildcard resource", problems[0])
        self.assertIn("line 11", problems[0])

    def test_justified_on_same_line_passes(self):
        problems, notes = iam(function_with_statement("""\
            - Effect: Allow
              Action: secretsmanager:GetSecretValue
              Resource: !Sub arn:aws:secretsmanager:eu-west-3:1:secret:x/* # justified: one per company
            """))
        self.assertEqual(problems, [])
        self.assertTrue(any("justified wildcard resource" in n for n in notes), notes)

    def test_justified_on_line_above_passes(self):
        problems, _ = iam(function_with_statement("""\
            - Effect: Allow
              Action: [secretsmanager:GetSecretValue]
              Resource:
                # justified: Secrets Manager appends a random suffix to the name
                - !Sub "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:p-*"
            """))
        self.assertEqual(problems, [])

    def test_justification_two_lines_above_does_not_count(self):
        problems, _ = iam(function_with_statement("""\
            - Effect: Allow
              # justified: too far away
              Action: secretsmanager:GetSecretValue
              Resource: "arn:aws:secretsmanager:eu-west-3:1:secret:x/*"
            """))
        self.assertEqual(len(problems), 1, problems)

    def test_justified_needs_a_reason(self):
        problems, _ = iam(function_with_statement("""\
            - Effect: Allow
              Action: s3:GetObject
              Resource: arn:aws:s3:::bucket/* # justified:
            """))
        self.assertEqual(len(problems), 1, problems)

    def test_hash_inside_quotes_is_not_a_comment(self):
        problems, _ = iam(function_with_statement("""\
            - Effect: Allow
              Action: s3:GetObject
              Resource: "arn:aws:s3:::bucket/ # justified: fake/*"
            """))
        self.assertEqual(len(problems), 1, problems)

    def test_wildcard_actions_fail(self):
        for action in ("'*'", "dynamodb:*", "s3:Get*", "[dynamodb:GetItem, 'dynamodb:*']"):
            with self.subTest(action=action):
                problems, _ = iam(function_with_statement(f"""\
                    - Effect: Allow
                      Action: {action}
                      Resource: !GetAtt Table.Arn
                    """))
                self.assertEqual(len(problems), 1, problems)
                self.assertIn("wildcard action", problems[0])

    def test_star_resource_fails_and_non_wildcard_passes(self):
        problems, _ = iam(function_with_statement("""\
            - Effect: Allow
              Action: dynamodb:GetItem
              Resource: "*"
            - Effect: Allow
              Action: dynamodb:GetItem
              Resource: [!GetAtt Table.Arn, !Sub "${Table.Arn}"]
            """))
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("Statement[0]", problems[0])

    def test_wildcard_inside_join_fails(self):
        problems, _ = iam(function_with_statement("""\
            - Effect: Allow
              Action: dynamodb:Query
              Resource: !Join ["", [!GetAtt Table.Arn, "/index/*"]]
            """))
        self.assertEqual(len(problems), 1, problems)

    def test_not_action_fails(self):
        problems, _ = iam(function_with_statement("""\
            - Effect: Allow
              NotAction: iam:PassRole
              Resource: !GetAtt Table.Arn
            """))
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("NotAction", problems[0])

    def test_sam_policy_template_and_managed_policy_fail(self):
        problems, _ = iam("""\
            Transform: AWS::Serverless-2016-10-31
            Resources:
              Fn:
                Type: AWS::Serverless::Function
                Properties:
                  Policies:
                    - DynamoDBCrudPolicy: {TableName: !Ref Table}
                    - AmazonS3FullAccess
            """)
        self.assertEqual(len(problems), 2, problems)

    def test_plain_iam_role_statements_are_checked(self):
        problems, _ = iam("""\
            Resources:
              Role:
                Type: AWS::IAM::Role
                Properties:
                  AssumeRolePolicyDocument:
                    Version: "2012-10-17"
                    Statement:
                      - Effect: Allow
                        Principal: {Service: lambda.amazonaws.com}
                        Action: sts:AssumeRole
                  Policies:
                    - PolicyName: p
                      PolicyDocument:
                        Version: "2012-10-17"
                        Statement:
                          - Effect: Allow
                            Action: logs:*
                            Resource: "*"
            """)
        self.assertEqual(len(problems), 2, problems)


class Routes(unittest.TestCase):
    TEMPLATE = textwrap.dedent("""\
        Resources:
          Api:
            Type: AWS::Serverless::HttpApi
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              Events:
                A:
                  Type: HttpApi
                  Properties: {ApiId: !Ref Api, Method: get, Path: "/v1/a/{id}"}
                B:
                  Type: HttpApi
                  Properties:
                    ApiId: !Ref Api
                    Method: POST
                    Path: /v1/a/{id}/b
                S:
                  Type: Schedule
                  Properties: {Schedule: rate(1 hour)}
        """)

    def check(self, routes: list[str]) -> ct.Report:
        report = ct.Report()
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / "routes.json"
            f.write_text(json.dumps(routes))
            with contextlib.redirect_stdout(io.StringIO()):
                ct.check_routes(ct.load_template_text(self.TEMPLATE), f, report)
        return report

    def test_extracts_http_routes_only(self):
        self.assertEqual(set(ct.http_routes(ct.load_template_text(self.TEMPLATE))),
                         {"GET /v1/a/{id}", "POST /v1/a/{id}/b"})

    def test_same_set_passes(self):
        self.assertEqual(self.check(["POST /v1/a/{id}/b", "get /v1/a/{id}/"]).failures, [])

    def test_missing_and_extra_routes_fail(self):
        failures = self.check(["GET /v1/a/{id}", "DELETE /v1/a/{id}"]).failures
        self.assertEqual(len(failures), 2, failures)
        self.assertTrue(any("POST /v1/a/{id}/b is in the template" in f for f in failures))
        self.assertTrue(any("DELETE /v1/a/{id} is in" in f for f in failures))


class FollowWorkers(unittest.TestCase):
    """Step 7 on the project template and on broken copies of it."""

    @classmethod
    def setUpClass(cls):
        cls.text = ct.DEFAULT_TEMPLATE.read_text()

    def findings(self, text: str) -> list[str]:
        return ct.follow_worker_findings(ct.load_template_text(text))

    def test_project_template_has_one_schedule_per_worker(self):
        self.assertEqual(self.findings(self.text), [])
        template = ct.load_template_text(self.text)
        allowed = template["Parameters"]["FollowWorkers"]["AllowedValues"]
        schedules = [n for n, _ in ct.resources_of_type(template, "AWS::Scheduler::Schedule")
                     if n.startswith("StatusSyncWorker")]
        self.assertEqual(len(schedules), max(allowed))

    def test_a_schedule_without_its_condition_fails(self):
        broken = self.text.replace("    Condition: FourFollowWorkers\n", "", 1)
        self.assertNotEqual(broken, self.text)
        problems = self.findings(broken)
        self.assertTrue(any("FollowWorkers=3" in p and "'3'" in p for p in problems), problems)

    def test_two_schedules_for_one_worker_fail(self):
        broken = self.text.replace('{"worker": 2,', '{"worker": 1,', 1)
        self.assertNotEqual(broken, self.text)
        problems = self.findings(broken)
        self.assertTrue(any("['0', '1', '1']" in p for p in problems), problems)

    def test_a_wrong_workers_count_fails(self):
        broken = self.text.replace('{"worker": 1, "workers": ${FollowWorkers}',
                                   '{"worker": 1, "workers": 4', 1)
        self.assertNotEqual(broken, self.text)
        problems = self.findings(broken)
        self.assertTrue(any("StatusSyncWorker1Schedule" in p and "workers 4" in p
                            for p in problems), problems)

    def test_schedules_that_differ_fail(self):
        marker = "MaximumRetryAttempts: 2\n          MaximumEventAgeInSeconds: 300"
        self.assertEqual(self.text.count(marker), 4)
        broken = self.text.replace(marker, marker.replace("2", "5"), 1)
        self.assertIn("differ", " ".join(self.findings(broken)))

    def test_a_schedule_event_on_the_function_fails(self):
        event = textwrap.indent(textwrap.dedent("""\
            Events:
              Extra:
                Type: ScheduleV2
                Properties:
                  ScheduleExpression: rate(5 minutes)
            """), " " * 6)
        anchor = "      ReservedConcurrentExecutions: !Ref FollowWorkers\n"
        broken = self.text.replace(anchor, anchor + event, 1)
        self.assertNotEqual(broken, self.text)
        self.assertTrue(any("names no worker" in p for p in self.findings(broken)))


class WholeTemplate(unittest.TestCase):
    """End to end on copies of infra/template.yaml (CodeUri made absolute so the copy can
    live in a temporary directory)."""

    def run_on(self, text: str) -> tuple[int, str]:
        text = text.replace("CodeUri: ..", f"CodeUri: {ct.REPO_ROOT}")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "template.yaml"
            path.write_text(text)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                rc = ct.run_checks(path, None, allow_warnings=False)
        return rc, out.getvalue()

    @classmethod
    def setUpClass(cls):
        cls.original = ct.DEFAULT_TEMPLATE.read_text()

    def test_project_template_passes(self):
        rc, out = self.run_on(self.original)
        self.assertEqual(rc, 0, out)

    def test_project_template_without_justification_fails_on_iam_only(self):
        lines = self.original.splitlines(keepends=True)
        stripped = "".join(l for l in lines if "# justified:" not in l)
        self.assertNotEqual(stripped, self.original)
        rc, out = self.run_on(stripped)
        self.assertEqual(rc, 1, out)
        summary = out.split("FAILED:", 1)[1]
        self.assertIn("IAM:", summary)
        self.assertNotIn("cfn-lint", summary)

    def test_ref_to_missing_resource_is_caught_after_the_transform(self):
        broken = self.original.replace("TABLE_NAME: !Ref Table", "TABLE_NAME: !Ref NoSuchTable")
        self.assertNotEqual(broken, self.original)
        rc, out = self.run_on(broken)
        self.assertEqual(rc, 1, out)
        self.assertIn("cfn-lint (transformed CloudFormation): errors", out)

    def test_wrong_runtime_and_missing_build_method_fail(self):
        broken = (self.original.replace("Runtime: provided.al2023", "Runtime: provided.al2")
                  .replace("BuildMethod: rust-cargolambda", "BuildMethod: makefile"))
        rc, out = self.run_on(broken)
        self.assertEqual(rc, 1, out)
        self.assertIn("Runtime is 'provided.al2'", out)
        self.assertIn("BuildMethod is 'makefile'", out)


if __name__ == "__main__":
    unittest.main()

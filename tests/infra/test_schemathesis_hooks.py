"""Tests of tests/infra/schemathesis_hooks.py: the secret check must really fail on a leak.

    .venv/bin/python -m unittest discover -s tests/infra -p 'test_schemathesis_hooks.py' -v
"""

from __future__ import annotations

import json
import sys
import unittest
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import schemathesis_hooks as hooks  # noqa: E402

SECRET = "S3cret-Pass-2026!"


def exchange(body: dict | None, answer, status: int = 200, headers: dict | None = None,
             path_parameters: dict | None = None):
    """A response/case pair as schemathesis hands them to a check."""
    sent = json.dumps(body).encode() if body is not None else None
    content = answer if isinstance(answer, bytes) else json.dumps(answer, ensure_ascii=False).encode()
    response = SimpleNamespace(
        status_code=status,
        content=content,
        headers=headers or {"content-type": "application/json"},
        request=SimpleNamespace(body=sent),
    )
    case = SimpleNamespace(
        body=body,
        path_parameters=path_parameters or {"siret": "12345678200099"},
        query={},
        headers={"Authorization": "Bearer x"},
    )
    return response, case


def check(body, answer, **kw) -> None:
    response, case = exchange(body, answer, **kw)
    hooks.no_secret_in_response(None, response, case)


ACCOUNT_VIEW = {
    "siret": "12345678200099", "referent_email": "a@b.fr", "technical_login": "TECH_1@cpp2017.fr",
    "environment": "sandbox", "password_set_at": "2026-11-27T10:00:00Z",
    "password_expires_at": "2027-11-27T10:00:00Z", "days_until_password_expiry": 365,
    "credentials_status": "valid", "verified_at": None, "updated_at": "2026-11-27T10:00:00Z",
}


class NoSecretInResponse(unittest.TestCase):
    def test_an_account_view_passes(self):
        check({"password": SECRET, "password_confirmation": SECRET, "technical_login": "TECH_1@cpp2017.fr"},
              ACCOUNT_VIEW)

    def test_a_password_member_fails_at_any_depth(self):
        with self.assertRaisesRegex(AssertionError, r"\$\.password"):
            check(None, {**ACCOUNT_VIEW, "password": "x"})
        with self.assertRaisesRegex(AssertionError, r"\$\.a\[0\]\.password_confirmation"):
            check(None, {"a": [{"password_confirmation": None}]})

    def test_the_password_echoed_in_a_message_fails(self):
        problem = {"code": "credentials_rejected", "detail": f"Mot de passe {SECRET} refusé"}
        with self.assertRaisesRegex(AssertionError, "`password`"):
            check({"password": SECRET, "password_confirmation": SECRET}, problem, status=422)

    def test_the_confirmation_alone_counts(self):
        with self.assertRaisesRegex(AssertionError, "`password_confirmation`"):
            check({"password": "other-one", "password_confirmation": SECRET},
                  {"errors": [{"message": f"« {SECRET} » ne correspond pas"}]}, status=400)

    def test_json_escaped_and_header_echoes_fail(self):
        tricky = 'Pa"ss\\wörd-2026'
        with self.assertRaises(AssertionError):
            check({"password": tricky}, {"detail": f"reçu {tricky}"}, status=400)
        with self.assertRaises(AssertionError):
            check({"password": SECRET}, {}, headers={"x-debug": SECRET})

    def test_a_value_also_sent_in_a_plain_field_may_come_back(self):
        check({"password": SECRET, "password_confirmation": SECRET, "technical_login": SECRET},
              {**ACCOUNT_VIEW, "technical_login": SECRET})
        check({"password": "12345678200099"}, ACCOUNT_VIEW)  # the path SIRET is echoed

    def test_short_values_must_not_be_a_whole_string_of_the_answer(self):
        check({"password": "ab"}, {"detail": "absent, abandonné"}, status=400)
        with self.assertRaises(AssertionError):
            check({"password": "ab"}, {"errors": [{"field": "x", "code": "c", "message": "ab"}]}, status=400)

    def test_bodies_that_are_not_json_objects_are_handled(self):
        check(None, b"")
        check(None, b"not json at all")
        response, case = exchange(None, ACCOUNT_VIEW)
        response.request.body = b"\xff\xfe"
        hooks.no_secret_in_response(None, response, case)


if __name__ == "__main__":
    unittest.main()

"""Schemathesis hooks for tests/infra/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

1. Path parameters: the generated `siret` is replaced, most of the time, by one of a small
   set (`ST_TOKEN_SIRETS`, the SIRETs of the run's token, and `ST_FOREIGN_SIRET`, one that is
   not in it), so that requests get past the `403` and reach the handlers; `market_ref` and
   `number` likewise by the ones the script registered beforehand (`ST_MARKET_REFS`,
   `ST_SITUATION_NUMBERS`), when it did. The generated value stays one of the choices, so
   odd values are still sent.
2. A check, `no_secret_in_response`: no answer carries a `password` or
   `password_confirmation` member (at any depth), nor a value that the request sent as one
   (anywhere in its body or headers), unless the same value was also sent in a field that is
   not secret (an answer may echo those). Values of 4 characters or more are searched as
   substrings, in raw and JSON-escaped form; shorter ones must not be any string of the
   answer's JSON.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

import schemathesis
from hypothesis import strategies as st

SECRET_FIELDS = ("password", "password_confirmation")
SUBSTRING_MIN_LEN = 4


def _env_list(name: str) -> list[str]:
    return [v for v in os.environ.get(name, "").replace(",", " ").split() if v]


TOKEN_SIRETS = _env_list("ST_TOKEN_SIRETS")
FOREIGN_SIRETS = _env_list("ST_FOREIGN_SIRET")
MARKET_REFS = _env_list("ST_MARKET_REFS")
SITUATION_NUMBERS = _env_list("ST_SITUATION_NUMBERS")


def _choices(preferred: list[str], generated: Any, weight: int) -> st.SearchStrategy:
    """`preferred` values `weight` times as often as each of the others, the generated one
    among the others."""
    return st.sampled_from(preferred * weight + [generated])


@schemathesis.hook
def flatmap_path_parameters(ctx, path_parameters: dict[str, Any]) -> st.SearchStrategy:
    parts: dict[str, st.SearchStrategy] = {}
    for name, value in path_parameters.items():
        if name == "siret" and TOKEN_SIRETS:
            parts[name] = st.sampled_from(TOKEN_SIRETS * 3 + FOREIGN_SIRETS + [value])
        elif name == "market_ref" and MARKET_REFS:
            parts[name] = _choices(MARKET_REFS, value, 2)
        elif name == "number" and SITUATION_NUMBERS:
            parts[name] = _choices(SITUATION_NUMBERS, value, 2)
        else:
            parts[name] = st.just(value)
    return st.fixed_dictionaries(parts)


# --------------------------------------------------------------------------------------
# No secret comes back


def _strings(value: Any) -> Iterator[str]:
    """Every string of a JSON value, object keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _secret_members(value: Any, path: str = "$") -> Iterator[str]:
    """JSON paths of the members named like a secret."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k in SECRET_FIELDS:
                yield f"{path}.{k}"
            yield from _secret_members(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _secret_members(v, f"{path}[{i}]")


def _sent_body(response, case) -> Any:
    """The JSON body as sent (the prepared request), else the case's body."""
    raw = getattr(getattr(response, "request", None), "body", None)
    if isinstance(raw, (bytes, bytearray)):
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return None
    body = getattr(case, "body", None)
    return body if isinstance(body, (dict, list, str)) else None


def _secrets_and_plain_inputs(body: Any, case) -> tuple[dict[str, str], list[str]]:
    """The values sent as secrets (field -> value) and every other string the request sent."""
    secrets: dict[str, str] = {}
    plain: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                plain.append(str(k))
                if k in SECRET_FIELDS and isinstance(v, str) and v:
                    secrets.setdefault(k, v)
                    # A second secret field with another value is a secret too.
                    if secrets[k] != v:
                        secrets[f"{k}#{len(secrets)}"] = v
                else:
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            plain.append(value)
        elif value is not None:
            plain.append(json.dumps(value))

    walk(body)
    for source in (case.path_parameters or {}, case.query or {}):
        plain.extend(str(k) for k in source)
        plain.extend(str(v) for v in source.values())
    for k, v in (case.headers or {}).items():
        if k.lower() != "authorization":
            plain.extend([str(k), str(v)])
    return secrets, plain


@schemathesis.check
def no_secret_in_response(ctx, response, case) -> None:
    """No answer carries a password member, nor a password value the request sent."""
    text = response.content.decode("utf-8", errors="replace") if response.content else ""
    try:
        answer = json.loads(text) if text else None
    except ValueError:
        answer = None
    if answer is not None:
        members = list(_secret_members(answer))
        if members:
            raise AssertionError(f"the answer has a secret member: {', '.join(members)}")

    secrets, plain = _secrets_and_plain_inputs(_sent_body(response, case), case)
    if not secrets:
        return
    headers_text = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    answer_strings = set(_strings(answer)) if answer is not None else set()
    for field, value in secrets.items():
        if any(value in other for other in plain):
            continue  # also sent in a field that may be echoed: not a leak by itself
        escaped = json.dumps(value, ensure_ascii=False)[1:-1]
        escaped_ascii = json.dumps(value)[1:-1]
        if len(value) >= SUBSTRING_MIN_LEN:
            hit = any(form in text or form in headers_text for form in {value, escaped, escaped_ascii})
        else:
            hit = value in answer_strings
        if hit:
            name = field.split("#", 1)[0]
            # The value itself is not repeated here: the report shows the request anyway.
            raise AssertionError(
                f"the value sent as `{name}` ({len(value)} characters) comes back in the answer "
                f"(status {response.status_code})"
            )

"""What issue 18 took out of every function's binary stays out: a second crypto library
(aws-lc, brought by the AWS SDK's or reqwest's default TLS features), the ICU tables of
`url`'s IDNA back end (both read from Cargo.lock), and a second HTTP stack (the SDK's own
HTTPS client, with HTTP/2: read from `cargo tree`, the functions' normal dependencies), so a
dependency change that brings them back fails here rather than in `make bench`'s size row.
And the release profile states what the deployed binaries are built with: cargo-lambda,
SAM's builder, sets `panic = "abort"` when the profile does not say, so the profile says it,
and `make bench` measures the same thing.

    .venv/bin/python -m unittest discover -s tests/infra -p 'test_build_shape.py' -v
"""

from __future__ import annotations

import subprocess
import tomllib
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(path.name for path in (ROOT / "functions").iterdir() if (path / "Cargo.toml").exists())


def linked_packages(function: str) -> set[str]:
    """The packages a function's binary is built from (normal and build dependencies)."""
    tree = subprocess.run(
        ["cargo", "tree", "--locked", "-p", function, "-e", "normal,build", "--prefix", "none", "--format", "{p}"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return {line.split()[0] for line in tree.splitlines() if line.strip()}


def locked_packages() -> dict[str, list[str]]:
    lock = tomllib.loads((ROOT / "Cargo.lock").read_text())
    packages: dict[str, list[str]] = {}
    for package in lock["package"]:
        packages.setdefault(package["name"], []).append(package["version"])
    return packages


class BuildShape(unittest.TestCase):
    def test_one_crypto_library_ring(self) -> None:
        packages = locked_packages()
        self.assertIn("ring", packages)
        for name in ("aws-lc-rs", "aws-lc-sys", "aws-lc-fips-sys"):
            self.assertNotIn(name, packages, f"{name} is back: a default TLS feature of the SDK or reqwest")

    def test_no_idna_unicode_back_end(self) -> None:
        packages = locked_packages()
        self.assertEqual(packages.get("idna_adapter"), ["1.0.0"])
        self.assertNotIn("icu_normalizer", packages)

    def test_one_http_stack(self) -> None:
        self.assertEqual(len(FUNCTIONS), 6)
        for function in FUNCTIONS:
            linked = linked_packages(function)
            self.assertIn("reqwest", linked, function)
            for name in ("h2", "aws-smithy-http-client"):
                self.assertNotIn(name, linked, f"{function}: {name} is back, the SDK's own HTTPS client")

    def test_release_profile_is_the_deployed_one(self) -> None:
        release = tomllib.loads((ROOT / "Cargo.toml").read_text())["profile"]["release"]
        self.assertEqual(
            {key: release.get(key) for key in ("panic", "opt-level", "lto", "codegen-units", "strip")},
            {"panic": "abort", "opt-level": "s", "lto": True, "codegen-units": 1, "strip": True},
            "the release profile is what SAM's cargo-lambda build deploys and what make bench measures",
        )


if __name__ == "__main__":
    unittest.main()

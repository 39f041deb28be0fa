"""The table's shape is described in three places that cannot share code: the SAM template
(the truth), the local stack's init_aws.py and the tests' testkit.rs (`try_create_table`).
This test fails when they drift apart.

    .venv/bin/python -m unittest discover -s tests/infra -p 'test_table_shape.py' -v
"""

from __future__ import annotations

import re
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_template as ct  # noqa: E402


def template_shape() -> tuple[list[str], str, list[str]]:
    template = ct.load_template_text((ROOT / "infra/template.yaml").read_text())
    table = template["Resources"]["Table"]["Properties"]
    attributes = [a["AttributeName"] for a in table["AttributeDefinitions"]]
    assert all(a["AttributeType"] == "S" for a in table["AttributeDefinitions"])
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["Projection"]["ProjectionType"] == "ALL"
    keys = [k["AttributeName"] for k in table["KeySchema"]]
    keys += [k["AttributeName"] for k in index["KeySchema"]]
    return attributes, index["IndexName"], keys


def strings(text: str) -> list[str]:
    return re.findall(r'"([A-Za-z0-9]+)"', text)


class TableShape(unittest.TestCase):
    def test_init_aws_and_testkit_create_the_template_table(self):
        attributes, index, keys = template_shape()
        self.assertEqual(keys, attributes, "the key attributes are the ones declared")

        init = (ROOT / "tests/stack/init_aws.py").read_text()
        init_attributes = re.search(r"for n in \(([^)]*)\)", init)
        self.assertIsNotNone(init_attributes, "init_aws.py: attribute list not found")
        self.assertEqual(strings(init_attributes.group(1)), attributes, "init_aws.py")
        self.assertEqual(re.findall(r'"IndexName": "(\w+)"', init), [index], "init_aws.py")

        kit = (ROOT / "tests/src/testkit.rs").read_text()
        kit_attributes = re.search(r"TABLE_KEY_ATTRIBUTES: \[&str; \d+\] = \[([^\]]*)\]", kit)
        self.assertIsNotNone(kit_attributes, "testkit.rs: TABLE_KEY_ATTRIBUTES not found")
        self.assertEqual(strings(kit_attributes.group(1)), attributes, "testkit.rs")
        self.assertEqual(re.findall(r'TABLE_INDEX: &str = "(\w+)"', kit), [index], "testkit.rs")

    def test_a_drift_is_caught(self):
        attributes, _, _ = template_shape()
        self.assertNotEqual(strings('"PK", "SK", "GSI1PK"'), attributes)


if __name__ == "__main__":
    unittest.main()

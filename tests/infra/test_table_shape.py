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


def template_shape() -> tuple[list[str], list[tuple[str, str, list[str]]], list[str]]:
    """The key attributes, each index as (name, projection, included attributes), and the
    key attributes in key-schema order (table, then each index)."""
    template = ct.load_template_text((ROOT / "infra/template.yaml").read_text())
    table = template["Resources"]["Table"]["Properties"]
    attributes = [a["AttributeName"] for a in table["AttributeDefinitions"]]
    assert all(a["AttributeType"] == "S" for a in table["AttributeDefinitions"])
    keys = [k["AttributeName"] for k in table["KeySchema"]]
    indexes = []
    for index in table["GlobalSecondaryIndexes"]:
        name = index["IndexName"]
        index_keys = [k["AttributeName"] for k in index["KeySchema"]]
        assert index_keys == [f"{name}PK", f"{name}SK"], index_keys
        keys += index_keys
        projection = index["Projection"]
        indexes.append((name, projection["ProjectionType"], projection.get("NonKeyAttributes", [])))
    return attributes, indexes, keys


def strings(text: str) -> list[str]:
    return re.findall(r'"([A-Za-z0-9_]+)"', text)


def init_indexes(init: str) -> list[tuple[str, str, list[str]]]:
    found = []
    for block in re.findall(r'"IndexName": "(\w+)".*?"Projection": \{([^}]*)\}', init, re.S):
        name, projection = block
        kind = re.search(r'"ProjectionType": "(\w+)"', projection).group(1)
        included = re.search(r'"NonKeyAttributes": \[([^\]]*)\]', projection)
        found.append((name, kind, strings(included.group(1)) if included else []))
    return found


def kit_indexes(kit: str) -> list[tuple[str, str, list[str]]]:
    table = re.search(r"TABLE_INDEXES: \[[^=]*= \[(.*?)\];", kit, re.S)
    assert table, "testkit.rs: TABLE_INDEXES not found"
    rows = re.findall(r'\("(\w+)", "(\w+)", &\[([^\]]*)\]\)', table.group(1))
    return [(name, kind, strings(included)) for name, kind, included in rows]


class TableShape(unittest.TestCase):
    def test_init_aws_and_testkit_create_the_template_table(self):
        attributes, indexes, keys = template_shape()
        self.assertEqual(keys, attributes, "the key attributes are the ones declared")

        init = (ROOT / "tests/stack/init_aws.py").read_text()
        init_attributes = re.search(r"for n in \(([^)]*)\)", init)
        self.assertIsNotNone(init_attributes, "init_aws.py: attribute list not found")
        self.assertEqual(strings(init_attributes.group(1)), attributes, "init_aws.py")
        self.assertEqual(init_indexes(init), indexes, "init_aws.py")

        kit = (ROOT / "tests/src/testkit.rs").read_text()
        kit_attributes = re.search(r"TABLE_KEY_ATTRIBUTES: \[&str; \d+\] = \[([^\]]*)\]", kit)
        self.assertIsNotNone(kit_attributes, "testkit.rs: TABLE_KEY_ATTRIBUTES not found")
        self.assertEqual(strings(kit_attributes.group(1)), attributes, "testkit.rs")
        self.assertEqual(kit_indexes(kit), indexes, "testkit.rs")

    def test_a_drift_is_caught(self):
        attributes, indexes, _ = template_shape()
        self.assertNotEqual(strings('"PK", "SK", "GSI1PK"'), attributes)
        drifted = kit_indexes('TABLE_INDEXES: [(&str, &str, &[&str]); 1] = [("GSI2", "ALL", &[]),];')
        self.assertNotEqual(drifted, indexes)


if __name__ == "__main__":
    unittest.main()

"""LocalStack's virtualenv as `make install` leaves it: its Step Functions' JSONPath parser reads PLY's tables
(written by .ci/localstack-parsetabs.py) instead of generating them for every path it parses."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# Counts the LALR table builds while LocalStack's own JSONPath helper parses paths of both grammars.
PROBE = """
import sys
import ply.yacc
if "--hide-tables" in sys.argv:  # table modules not importable, as before `make install` wrote them
    class Hide:
        def find_spec(self, name, path=None, target=None):
            if name.endswith("_parsetab"):
                raise ImportError(name)
    sys.meta_path.insert(0, Hide())
built = []
original = ply.yacc.LRGeneratedTable.__init__
def counting(self, *args, **kwargs):
    built.append(1)
    original(self, *args, **kwargs)
ply.yacc.LRGeneratedTable.__init__ = counting
from jsonpath_ng import parse as base_parse
from localstack.services.stepfunctions.asl.utils.json_path import extract_json
assert extract_json("$.run.model", {"run": {"model": "churn"}}) == "churn"
assert extract_json("$.items[?(@.n > 1)].n", {"items": [{"n": 1}, {"n": 2}]}) == 2
assert [m.value for m in base_parse("$.a[*]").find({"a": [1, 2]})] == [1, 2]
print(len(built))
"""


def probe(python: Path, *args: str) -> int:
    done = subprocess.run([str(python), "-c", PROBE, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""})
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_jsonpath_parsers_read_their_tables(localstack_python):
    assert probe(localstack_python) == 0


def test_without_the_tables_every_parser_builds_them(localstack_python):
    """The probe sees the builds it guards against: the same interpreter with the table modules not importable."""
    assert probe(localstack_python, "--hide-tables") >= 3

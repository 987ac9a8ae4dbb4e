"""The library's public API is typed and lazy: mypy (pydantic plugin) is clean on components/, a user's program
importing from ``components`` is checked against the real classes (not ``Any``), and importing the package pulls
in no SDK."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


# mypy's incremental cache outside the checkout (as pip's is): most of a cold run is reading pulumi-aws's ~4,000
# typed modules, which do not change between clones. mypy revalidates every cached module by its source's hash.
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlops-stack" / "mypy"


def mypy(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MYPY_CACHE_DIR": os.environ.get("MYPY_CACHE_DIR") or str(CACHE)}
    return subprocess.run([sys.executable, "-m", "mypy", *args], cwd=ROOT, capture_output=True, text=True, env=env)


def test_mypy_is_clean_on_components():
    result = mypy()  # files, plugins and strictness from pyproject.toml [tool.mypy]
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_users_mistake_is_caught_through_the_top_level_import(tmp_path):
    program = tmp_path / "user_program.py"
    program.write_text(
        "from components import StackContext, BucketRef\n"
        "ctx = StackContext(prefix='acme', stack='dev', environment='dev', region='us-east-1', account_id='1', protect='yes')\n"
        "BucketRef.from_name('b').grant_read('not a role')\n"
    )
    result = mypy(str(program))
    assert result.returncode == 1
    assert 'Argument "protect" to "StackContext" has incompatible type "str"' in result.stdout
    assert 'Argument 1 to "grant_read" of "BucketRef" has incompatible type "str"' in result.stdout


def test_importing_the_package_loads_no_sdk_and_every_export_resolves():
    code = (
        "import sys, components\n"
        "assert 'pulumi_aws' not in sys.modules and 'pulumi' not in sys.modules, 'the package import is lazy'\n"
        "missing = [n for n in components.__all__ if getattr(components, n, None) is None]\n"
        "assert not missing, missing\n"
        "import importlib\n"
        "for pkg in ('code', 'delivery', 'model', 'monitoring', 'network', 'notifications', 'pipeline', 'platform',\n"
        "            'security', 'serving', 'storage'):\n"
        "    m = importlib.import_module('components.' + pkg)\n"
        "    assert m.__all__ and all(getattr(m, n) is not None for n in m.__all__), pkg\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_package_declares_its_types():
    assert (ROOT / "components" / "py.typed").exists()
    assert 'components = ["py.typed"]' in (ROOT / "pyproject.toml").read_text()


def test_every_public_args_class_documents_each_field():
    """Each field of a public args/reference class is followed by its docstring (what it is, and its default)."""
    import ast
    import inspect

    import components

    documented = {"StackContext", "ModelImages", "QualityStandard", "PlatformRef", "BucketRef", "KeyRef", "TopicRef",
                  "ObjectLock", "DashboardModel"}
    missing = []
    for name in components.__all__:
        if not (name.endswith("Args") or name in documented):
            continue
        body = ast.parse(inspect.getsource(getattr(components, name))).body[0].body  # type: ignore[attr-defined]
        for node, after in zip(body, [*body[1:], None]):
            if isinstance(node, ast.AnnAssign) and not (
                isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)
            ):
                missing.append(f"{name}.{ast.unparse(node.target)}")
    assert not missing, missing


def test_the_examples_type_check_against_the_library():
    for example in ("minimal", "attach-model"):
        result = mypy(str(ROOT / "examples" / example / "__main__.py"))
        assert result.returncode == 0, result.stdout + result.stderr

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
        "import pulumi_aws as aws\n"
        "aws.s3.Bucket('b', force_destroy='yes')\n"  # a service components/ use: typed, not skipped
    )
    result = mypy(str(program))
    assert result.returncode == 1
    assert 'Argument "protect" to "StackContext" has incompatible type "str"' in result.stdout
    assert 'Argument 1 to "grant_read" of "BucketRef" has incompatible type "str"' in result.stdout
    assert 'No overload variant of "Bucket" matches argument types "str", "str"' in result.stdout


def _read_by_mypy() -> set[str]:
    """The pulumi_aws modules pyproject.toml has mypy read (the rest of pulumi_aws.* is skipped)."""
    import tomllib

    overrides = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["overrides"]
    assert any(o["module"] == ["pulumi_aws.*"] and o["follow_imports"] == "skip" for o in overrides)
    return {m for o in overrides if o.get("follow_imports") == "normal" for m in o["module"] if m.startswith("pulumi_aws")}


def test_mypy_reads_every_pulumi_aws_service_components_use():
    """mypy skips pulumi-aws's services that components/ does not use (as Any): a service or top-level function
    components/ starts using must be added to the list, or its calls would go unchecked."""
    import ast

    import pulumi_aws

    package = Path(pulumi_aws.__file__).parent
    read = _read_by_mypy()
    used = {
        node.attr
        for path in (ROOT / "components").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "aws"
    }
    assert {"s3", "iam", "sagemaker"} <= used
    missing = []
    for name in sorted(used):
        if (package / name).is_dir():
            missing += [m for m in (f"pulumi_aws.{name}", f"pulumi_aws.{name}.*") if m not in read]
        else:
            defined = [f.stem for f in package.glob("*.py") if f"def {name}(" in f.read_text()]
            assert defined, f"aws.{name} is defined nowhere in pulumi_aws"
            missing += [f"pulumi_aws.{m}" for m in defined if f"pulumi_aws.{m}" not in read]
    assert not missing, f"add to pyproject.toml's [[tool.mypy.overrides]] read by mypy: {missing}"


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

"""The optional integrations (interpool.joblib, interpool.dask): the core package
imports none of their dependencies, and a missing dependency is an ImportError
that names the extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

EXTRAS = [
    # (module, the top-level packages it needs, what its error says, the extra)
    ("interpool.joblib", ("joblib",), "interpool.joblib needs joblib", "interpool[joblib]"),
    ("interpool.dask", ("dask", "distributed"), "interpool.dask needs Dask's distributed",
     "interpool[dask]"),
]


def run_python(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("module, packages, message, extra", EXTRAS)
def test_import_interpool_does_not_import_them(module, packages, message, extra):
    out = run_python(f"""
        import sys
        import interpool, interpool.interpreters
        with interpool.Executor(1) as ex:
            assert ex.submit(abs, -2).result() == 2
        print(sorted(m for m in sys.modules if m.split(".")[0] in {packages!r}))
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module, packages, message, extra", EXTRAS)
def test_a_missing_dependency_is_an_import_error_naming_the_extra(module, packages, message, extra):
    # sys.modules[name] = None makes `import name` fail, as if it were not installed.
    out = run_python(f"""
        import sys
        sys.modules[{packages[-1]!r}] = None
        try:
            import {module}
        except ImportError as e:
            print(e)
        else:
            print("imported")
    """)
    assert out.returncode == 0, out.stderr
    assert message in out.stdout
    assert f"pip install '{extra}'" in out.stdout

"""tools/check-wheel (run by `make test-wheel`) on made-up wheels and source trees:
it passes a complete wheel and names each kind of problem."""

import os
import subprocess
import sys
import zipfile

import pytest

# The source tree: a copy of the tests run elsewhere is given it (make test-wheel).
from source_tree import ROOT  # noqa: E402
TOOL = os.path.join(ROOT, "tools", "check-wheel")

METADATA = "Metadata-Version: 2.1\nName: interpool\nVersion: 0.1.0\nRequires-Python: >=3.12\n\nText\n"


@pytest.fixture
def source(tmp_path):
    """A source tree with pyproject.toml and a package of two modules and a stub."""
    root = tmp_path / "src"
    package = root / "python" / "interpool"
    (package / "demo").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "interpool"\nversion = "0.1.0"\n')
    for name in ("__init__.py", "_executor.py", "demo/__init__.py", "__init__.pyi"):
        (package / name).write_text("")
    (package / "py.typed").write_text("")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "x.cpython-313.pyc").write_text("")
    return root


def make_wheel(tmp_path, files, name="interpool-0.1.0-cp313-cp313-linux_x86_64.whl"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as z:
        for member, text in files.items():
            z.writestr(member, text)
    return str(path)


def complete():
    return {
        "interpool/__init__.py": "", "interpool/_executor.py": "", "interpool/demo/__init__.py": "",
        "interpool/__init__.pyi": "", "interpool/py.typed": "",
        "interpool/_interpool.cpython-313-x86_64-linux-gnu.so": "", "interpool/libinterpool_core.so": "",
        "interpool-0.1.0.dist-info/METADATA": METADATA, "interpool-0.1.0.dist-info/RECORD": "",
    }


def check(wheel, source):
    return subprocess.run([sys.executable, TOOL, wheel, "--source", str(source)],
                          capture_output=True, text=True, timeout=60)


def test_a_complete_wheel_passes(tmp_path, source):
    r = check(make_wheel(tmp_path, complete()), source)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout and "py.typed" in r.stdout and "Requires-Python: >=3.12" in r.stdout


@pytest.mark.parametrize("change, expected", [
    ({"interpool/_interpool.cpython-313-x86_64-linux-gnu.so": None}, "no interpool/_interpool.cpython-313"),
    ({"interpool/_interpool.cpython-313-x86_64-linux-gnu.so": None,
      "interpool/_interpool.cpython-312-x86_64-linux-gnu.so": ""}, "no interpool/_interpool.cpython-313"),
    ({"interpool/libinterpool_core.so": None}, "libinterpool_core.so"),
    ({"interpool/demo/__init__.py": None}, "interpool/demo/__init__.py"),
    ({"interpool/__init__.pyi": None}, "interpool/__init__.pyi"),
    ({"interpool/py.typed": None}, "interpool/py.typed"),
    ({"interpool/__pycache__/x.cpython-313.pyc": ""}, "compiled Python"),
    ({"tests/test_x.py": ""}, "outside the package"),
    ({"interpool-0.1.0.dist-info/METADATA": METADATA.replace(">=3.12", ">=3.8")}, "Requires-Python"),
    ({"interpool-0.1.0.dist-info/METADATA": METADATA.replace("Requires-Python: >=3.12\n", "")},
     "Requires-Python"),
    ({"interpool-0.1.0.dist-info/METADATA": None}, "no interpool-0.1.0.dist-info/METADATA"),
])
def test_each_problem_is_named(tmp_path, source, change, expected):
    files = complete()
    for member, text in change.items():
        if text is None:
            files.pop(member)
        else:
            files[member] = text
    r = check(make_wheel(tmp_path, files), source)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert expected in r.stderr, r.stderr


def test_a_wheel_of_another_version(tmp_path, source):
    r = check(make_wheel(tmp_path, complete(), "interpool-0.2.0-cp313-cp313-linux_x86_64.whl"), source)
    assert r.returncode == 1
    assert "pyproject.toml says interpool 0.1.0" in r.stderr

import subprocess
import sys


def test_package_sdk_and_cli_import_without_torch():
    code = (
        "import sys, cartoongan, cartoongan.sdk, cartoongan.cli, cartoongan.errors;"
        "cartoongan.cli.build_parser();"
        "heavy = sorted(m for m in ('torch', 'safetensors', 'h5py', 'yaml') if m in sys.modules);"
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_cli_help_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "cartoongan.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "train" in result.stdout and "data" in result.stdout


def test_missing_optional_dependency_names_the_extra(monkeypatch):
    import pytest

    from cartoongan._deps import require
    from cartoongan.errors import MissingDependency

    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` fail
    with pytest.raises(MissingDependency, match=r"reading Keras weights needs the 'h5py' package.*cartoongan\[train\]"):
        require("h5py", "reading Keras weights")

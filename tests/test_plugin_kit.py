"""The plugin kit: ``coderic plugin new`` writes a package that installs into a fresh environment
(with the workspace's SDK and kernel, pinned by uv.lock) and passes its own tests unchanged, and
that imports nothing of the kernel."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from coderic_kernel.cli.root import cli as main

ROOT = Path(__file__).resolve().parents[1]
KERNEL_IMPORT = re.compile(r"^\s*(from|import)\s+coderic_kernel\b", re.MULTILINE)


def uv() -> str:
    found = ROOT / ".tools" / "bin" / "uv"
    if found.exists():
        return str(found)
    which = shutil.which("uv")
    if which is None:
        pytest.fail("uv is needed to install the generated plugin: run 'make install' (it puts uv in .tools/bin)")
    return which


def run(*command: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_bad_names_and_taken_folders_are_refused_with_a_reason(tmp_path: Path) -> None:
    runner = CliRunner()
    for name, reason in (("Notes", "not a plugin name"), ("1x", "not a plugin name"), ("serve", "taken by the kernel"),
                         ("files", "taken by the kernel")):
        result = runner.invoke(main, ["plugin", "new", name, "-d", str(tmp_path / name)])
        assert result.exit_code == 2 and reason in result.output, result.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    result = runner.invoke(main, ["plugin", "new", "notes", "-d", str(tmp_path / "full")])
    assert result.exit_code == 2 and "not empty" in result.output


@pytest.mark.timeout(900)
def test_a_generated_plugin_installs_and_passes_its_own_tests(tmp_path: Path) -> None:
    package = tmp_path / "coderic-notes"
    result = CliRunner().invoke(main, ["plugin", "new", "notes", "-d", str(package), "--description", "Notes."])
    assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file())
    assert {"pyproject.toml", "README.md", "coderic_notes/plugin.py", "coderic_notes/tables.py",
            "coderic_notes/piccolo_app.py", "tests/test_notes.py"} <= set(files)
    assert any(re.fullmatch(r"coderic_notes/migrations/notes_\d{4}_.*\.py", f) for f in files), files
    for path in package.rglob("*.py"):
        assert not KERNEL_IMPORT.search(path.read_text()), f"{path} imports coderic_kernel"
    assert 'notes = "coderic_notes.plugin"' in (package / "pyproject.toml").read_text()

    constraints = tmp_path / "constraints.txt"
    exported = run(uv(), "export", "--frozen", "--format", "requirements-txt", "--no-hashes", "--all-packages",
                   "--no-emit-workspace", "-q", "-o", str(constraints), cwd=ROOT)
    assert exported.returncode == 0, exported.stderr
    venv = tmp_path / "venv"
    assert run(uv(), "venv", "-q", str(venv)).returncode == 0
    install = [uv(), "pip", "install", "-q", "-c", str(constraints), "--python", str(venv / "bin" / "python"),
               f"{ROOT / 'sdk'}[testing]", str(ROOT / "kernel"), f"{package}[test]"]
    installed = run(*install[:3], "--offline", *install[3:])  # from uv's cache when it has everything
    if installed.returncode != 0:
        installed = run(*install)
    assert installed.returncode == 0, installed.stderr
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "VIRTUAL_ENV"))}
    tested = run(str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=package,
                 env=environment)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", tested.stdout) and " failed" not in tested.stdout, tested.stdout[-500:]

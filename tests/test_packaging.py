"""The package layout: envs/ and policies/ install as vpt_rl.envs / vpt_rl.policies, never as top-level
modules, for a regular install, an editable install and a plain source checkout on sys.path."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PROBE = (
    "import importlib.util, vpt_rl, vpt_rl.envs, vpt_rl.policies, vpt_rl.envs.wrappers;"
    "print(vpt_rl.envs.__file__);"
    "print(importlib.util.find_spec('envs') is None and importlib.util.find_spec('policies') is None)"
)


def _probe(cwd: Path, pythonpath: str = "") -> list:
    env = dict(os.environ, PYTHONPATH=pythonpath, PYTHONNOUSERSITE="1")
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_regular_install_maps_envs_and_policies_into_vpt_rl(tmp_path):
    pytest.importorskip("setuptools")
    target = tmp_path / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-compile", "-q",
           "--target", str(target), str(REPO)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    if res.returncode != 0:  # an old setuptools without `wheel` in the venv: let pip build in isolation
        cmd.remove("--no-build-isolation")
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (target / "vpt_rl" / "envs" / "__init__.py").is_file()
    assert (target / "vpt_rl" / "policies" / "__init__.py").is_file()
    assert not (target / "envs").exists() and not (target / "policies").exists(), "generic top-level module installed"
    # run from somewhere that is not the repo, with only the installed copy (and site-packages) importable
    envs_file, no_toplevel = _probe(tmp_path, str(target))
    assert Path(envs_file).resolve() == (target / "vpt_rl" / "envs" / "__init__.py").resolve()
    assert no_toplevel == "True"


def test_source_checkout_on_sys_path_resolves_subpackages(tmp_path):
    # `python -m pytest` from the repo root puts the root first on sys.path: vpt_rl must still find envs/
    envs_file, _ = _probe(REPO, str(REPO))
    assert Path(envs_file).resolve() == (REPO / "envs" / "__init__.py").resolve()


def test_installed_import_from_repo_root():
    # the editable (or regular) install used by the test run itself, imported from the repo root
    envs_file, _ = _probe(REPO, "")
    assert Path(envs_file).resolve() in {(REPO / "envs" / "__init__.py").resolve()} or "site-packages" in envs_file


def test_source_checkout_exposes_only_envs_and_policies_under_vpt_rl():
    # the repository root holds tests/, benchmarks/ and setup.py too: none of them may become vpt_rl.<name>
    code = ("import importlib.util, vpt_rl;"
            "print([importlib.util.find_spec('vpt_rl.' + n) is None for n in ('tests', 'setup', 'benchmarks', 'docs')])")
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONNOUSERSITE="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[True, True, True, True]"

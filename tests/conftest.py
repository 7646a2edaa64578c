"""Shared test helpers: where the official-code fixtures live, and small-thread torch for a 2-core CI."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VPT_RL_SHARED", REPO.parent / "shared"))
FIXTURES = SHARED / "fixtures" / "vpt"
SPEC = SHARED / "spec"


def pytest_configure(config):
    try:
        import torch

        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"official fixtures not found at {FIXTURES}; set VPT_RL_SHARED to the shared/ folder")
    return FIXTURES

"""Shared test helpers: where the official-code fixtures live, and single-thread torch for reproducible numbers."""
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

        # One thread: results then do not depend on how a batch is split over threads (we saw ~1e-3
        # differences with 2 threads on perturbed micro nets), and tiny test models gain nothing from more.
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"official fixtures not found at {FIXTURES}; set VPT_RL_SHARED to the shared/ folder")
    return FIXTURES

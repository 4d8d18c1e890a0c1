from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def clips() -> Path:
    folder = DATA / "clips"
    if not folder.is_dir():
        pytest.skip("development footage (../shared/data) not present")
    return folder

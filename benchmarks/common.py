"""What the benchmark scripts share with the tests: the development clips' folder, running the CLI, what people do to
video (tests/attacks.py) and driving the studio in Chromium (tests/studio_client.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]  # `tests.helpers` and (without installing) `doppel`

from tests import attacks, studio_client  # noqa: E402
from tests.helpers import CLIPS, doppel  # noqa: E402

__all__ = ["CLIPS", "ROOT", "attacks", "doppel", "studio_client"]

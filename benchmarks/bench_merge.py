"""Merge figures (issue: merge, export, evaluate).

  speed        merge frames/s with a cpu-64 model at 352x288 (foreman_cif) and 720x486 (vtc1nw_422_ntsc);
               the model is trained for a few steps only (speed does not depend on training).
  quality WS   swap strength and flicker of an already trained workspace (e.g. foreman_cif -> deadline_cif
               after 30 minutes of cpu-64): merge, then `doppel eval`.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from common import CLIPS, doppel


def speed() -> None:
    for source, target in (("deadline_cif", "foreman_cif"), ("akiyo_cif", "vtc1nw_422_ntsc")):
        with tempfile.TemporaryDirectory() as tmp:
            ws = str(Path(tmp) / "ws")
            doppel("init", ws)
            doppel("add", ws, "--source", str(CLIPS / f"{source}.mp4"))
            doppel("add", ws, "--target", str(CLIPS / f"{target}.mp4"))
            doppel("extract", ws)
            doppel("train", ws, "--preset", "cpu-64", "--iterations", "10")
            report = json.loads(doppel("merge", ws, "--json"))
            for blend in ("seamless",):
                doppel("merge", ws, "--set", "0-0", f"blend={blend}")  # touch one frame, then time all
                toml = Path(ws) / "doppel.toml"
                toml.write_text(toml.read_text().replace('blend = "alpha"', f'blend = "{blend}"'))
                other = json.loads(doppel("merge", ws, "--json"))
            print(f"{target}: {report['rendered']} frames rendered at {report['fps']:.1f} frames/s "
                  f"(alpha blend); {other['fps']:.1f} frames/s with seamless cloning", flush=True)


def quality(ws: str) -> None:
    merged = json.loads(doppel("merge", ws, "--json"))
    print(f"merge: {merged['rendered']} frames at {merged['fps']:.1f} frames/s")
    report = json.loads(doppel("eval", ws, "--json"))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["quality"] and len(sys.argv) == 3:
        quality(sys.argv[2])
    elif sys.argv[1:2] == ["speed"]:
        speed()
    else:
        sys.exit(__doc__)

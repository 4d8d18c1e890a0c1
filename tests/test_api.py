"""The public Python API: the README's example, one JSON convention, checked modes, one progress protocol,
and no export without its provenance marks (visible disclosure, watermark, C2PA manifest)."""

from __future__ import annotations

import dataclasses
import json
import os
import pydoc
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import cv2
import numpy as np
import pytest

import doppel
from doppel.demo import grace_hopper
from doppel.errors import DoppelError
from doppel.media import MediaReader, probe
from doppel.provenance import DISCLOSURES, Disclosure, badge, title_card
from doppel.workspace.settings import ExportCodec as Codec
from tests.faces import astro
from tests.helpers import clip, run

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    """The Python block that follows the README's marker comment."""
    text = README.read_text()
    marker = text.index("<!-- the test suite runs this example exactly as written")
    match = re.search(r"```python\n(.*?)```", text[marker:], re.S)
    assert match is not None
    return match.group(1)


def test_readme_example_runs_as_written(tmp_path: Path) -> None:
    code = readme_example()
    assert 8 <= len(code.strip().splitlines()) <= 14
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "25 True"
    assert "'chosen_faces': 25" in lines[0]  # extraction found the person on every target frame
    assert probe(tmp_path / "shot1.mp4").frame_count == 25
    assert (tmp_path / "shot1" / "doppel.db").is_file() and (tmp_path / "shot1" / "keys").is_dir()


def test_help_shows_the_api() -> None:
    text = pydoc.render_doc(doppel, renderer=pydoc.plaintext)
    for name in ("create", "open", "Project", "verify", "run_demo", "ProgressCallback"):
        assert name in text
    for method in ("add", "extract", "faces", "train", "merge", "set_override", "export", "evaluate", "info"):
        assert callable(getattr(doppel.Project, method))


def test_import_doppel_leaves_torch_out_until_a_training_report_is_asked_for() -> None:
    """The training reports are exported lazily: `import doppel` (the CLI's start, `doppel --help`) stays light."""
    code = """import sys, doppel
assert 'torch' not in sys.modules, 'import doppel imported torch'
assert {'TrainReport', 'MaskTrainReport'} <= set(dir(doppel))
from doppel.occlusion.train import MaskTrainReport
from doppel.train.loop import TrainReport
assert doppel.MaskTrainReport is MaskTrainReport and doppel.TrainReport is TrainReport
assert 'torch' in sys.modules
try:
    doppel.NoSuchThing
except AttributeError as e:
    print(e)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "module 'doppel' has no attribute 'NoSuchThing'"


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A merged workspace built through the API, with a CIF-sized 2-second plate: enough picture for the
    watermark to be verified (it pools over pixels and frames)."""
    root = tmp_path_factory.mktemp("api")
    src = clip(root / "astro.mp4", astro(), 12)
    dst = clip(root / "plate.mp4", grace_hopper(), 50, seed=2, size=(352, 288), tone_hz=220.0)
    calls: list[tuple[str, int, int, str]] = []
    progress = lambda stage, done, total, message: calls.append((stage, done, total, message))  # noqa: E731
    with doppel.create(root / "ws") as p:
        added = p.add(source=src, progress=progress)
        assert [m.role for m in added.media] == ["source"] and added.media[0].info.frame_count == 12
        p.add(target=dst, progress=progress)
        extracted = p.extract(workers=1, progress=progress)
        assert extracted.people["target"]["chosen_faces"] == 50
        trained = p.train(iterations=2, preset="tiny-64", progress=progress)
        assert trained.step == 2 and trained.steps_run == 2 and trained.checkpoint.is_dir()
        assert isinstance(trained, doppel.TrainReport)
        merged = p.merge(progress=progress)
        assert merged.frames == 50 and merged.rendered == 50
    stages = {c[0] for c in calls}
    assert stages == {"probe", "extract", "train", "merge"}
    last = {(c[0], c[3]): c for c in calls if c[0] != "probe"}
    for stage, done, total, _ in last.values():  # every stage's last call says it finished
        assert done == total > 0, (stage, done, total)
    return root / "ws"


def _frame(path: Path, index: int) -> np.ndarray:
    with MediaReader(probe(path)) as reader:
        return reader[index]


@pytest.mark.parametrize("mode", DISCLOSURES)
@pytest.mark.parametrize("codec", get_args(Codec))
def test_every_export_path_carries_disclosure_watermark_and_manifest(merged: Path, tmp_path: Path, codec: str,
                                                                       mode: str) -> None:
    out = tmp_path / {"h264": "out.mp4", "prores": "out.mov", "lossless": "out.mov", "png": "frames"}[codec]
    with doppel.open(merged) as p:
        # Half-second cards: this plate is only 2 s long, and 2-second cards would cover all of it.
        report = p.export(out, codec=codec, disclosure=Disclosure(mode, card_seconds=0.5))  # type: ignore[arg-type]
        render = cv2.cvtColor(cv2.imread(str(merged / "renders" / "000025.png")), cv2.COLOR_BGR2RGB)
    assert report.c2pa and report.frames == 50
    found = doppel.verify(out)
    assert found.manifest.present and found.manifest.valid and not found.tampered
    assert found.watermark_found, found.watermark_score
    middle = _frame(out, 25).astype(int)
    h, w = middle.shape[:2]
    drawn = np.argwhere(np.any(badge(render, "AI-generated") != render, axis=2))  # where the badge goes
    (y0, x0), (y1, x1) = drawn.min(0), drawn.max(0)
    corner = np.s_[y0:y1 + 1, x0:x1 + 1]
    to_plain = np.abs(middle[corner] - render[corner]).mean()
    to_badged = np.abs(middle[corner] - badge(render, "AI-generated")[corner]).mean()
    if mode == "badge":
        assert to_badged < to_plain / 3, (to_badged, to_plain)  # the label is there
    else:
        assert to_plain < to_badged / 3, (to_badged, to_plain)  # no label mid-shot...
        card = title_card(w, h, "AI-generated").astype(int)
        for index in (0, 49):  # ...but title cards at both ends
            assert np.abs(_frame(out, index).astype(int) - card).mean() < 6


def test_provenance_cannot_be_switched_off(merged: Path, tmp_path: Path) -> None:
    for bad in ({"mode": "none"}, {"mode": ""}, {"text": ""}, {"text": "   "}, {"card_seconds": 0}):
        with pytest.raises(DoppelError):
            Disclosure(**bad)  # type: ignore[arg-type]
    with pytest.raises(DoppelError, match="disclosure mode must be one of badge, credits"):
        dataclasses.replace(Disclosure(), mode="none")  # type: ignore[arg-type]
    sneaky = Disclosure()
    object.__setattr__(sneaky, "mode", "none")  # past the constructor: export checks again
    with doppel.open(merged) as p:
        for kwargs in ({"disclosure": "none"}, {"disclosure": sneaky}, {"disclosure_text": ""},
                       {"disclosure": "off"}, {"disclosure": {"mode": "none"}}):
            with pytest.raises(DoppelError):
                p.export(tmp_path / "x.mp4", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "x.mp4").exists()
    public = {name for name in doppel.Project.export.__code__.co_varnames}
    assert not public & {"watermark", "c2pa", "manifest", "sign", "label", "unlabelled"}


def test_modes_are_checked_at_the_boundary(merged: Path, tmp_path: Path) -> None:
    with doppel.open(merged) as p:
        with pytest.raises(DoppelError, match="role must be one of source, target, not 'sources'"):
            p.faces(role="sources")  # type: ignore[arg-type]
        with pytest.raises(DoppelError, match="sort must be one of"):
            p.faces(sort="random")  # type: ignore[arg-type]
        with pytest.raises(DoppelError, match="codec must be one of h264, prores, lossless, png"):
            p.export(tmp_path / "x.mkv", codec="ffv1")  # type: ignore[arg-type]
        with pytest.raises(DoppelError, match="either source"):
            p.add()
        with pytest.raises(DoppelError, match="iterations=N or minutes=M"):
            p.train()
        with pytest.raises(DoppelError, match="fps 'fast' is not a number"):
            p.add(source=tmp_path, fps="fast")


def test_reports_share_one_json_convention_with_the_cli(merged: Path, tmp_path: Path) -> None:
    with doppel.open(merged) as p:
        info = p.info()
        listing = p.faces(role="target", sort="sharpness", limit=3)
        override = p.set_override("10-20", "erode", 15)
        assert p.overrides() == (override,) and (override.first, override.last, override.value) == (10, 20, 15)
        assert p.remove_overrides() == 1 and p.overrides() == ()
        excluded = p.exclude([listing.listed[0].id], reason="test")
        assert excluded.excluded == 1 and p.faces(role="target").usable == listing.usable - 1
        assert p.include([listing.listed[0].id]).included == 1
        listing = p.faces(role="target", sort="sharpness", limit=3)
        assert listing.listed[0].exclude_reason == "user: included"
    assert info.faces >= 60 and info.models["main"]["step"] == 2 and info.swapped_frames == 50
    assert [f.sharpness for f in listing.listed] == sorted((f.sharpness for f in listing.listed), reverse=True)
    for report in (info, listing):
        assert json.loads(json.dumps(report.to_json())) == report.to_json()
    code, out, _ = run("info", merged, "--json")
    assert code == 0 and json.loads(out) == info.to_json()
    code, out, _ = run("faces", merged, "--role", "target", "--sort", "sharpness", "--limit", "3", "--json")
    assert code == 0 and json.loads(out) == listing.to_json()
    assert doppel.presets()[0].to_json()["name"] == "tiny-64"

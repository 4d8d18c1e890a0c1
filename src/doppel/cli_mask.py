"""`doppel mask ...`: the occlusion mask's commands (train, apply, label, propagate). Thin, like cli.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from doppel.errors import DoppelError
from doppel.progress import bind, rich_progress

WS_ARG = click.argument("workspace", type=click.Path(path_type=Path))


def _echo_json(data: Any) -> None:
    from doppel.reports import jsonable

    click.echo(json.dumps(jsonable(data), indent=2))


@click.group()
def mask() -> None:
    """Occlusion masks: keep hands, microphones and hair in front of the swapped face.

    \b
    A typical session:
      doppel mask train shot1 --minutes 5       # works with zero labels (self-supervised)
      doppel mask label shot1 --frame 42 --add hand.json
      doppel mask propagate shot1 --frame 42    # suggestions for the next/previous 15 frames
      doppel mask label shot1 --frame 43 --confirm
      doppel mask train shot1 --minutes 5       # continues, now also on the labels
      doppel merge shot1 --set 0-299 mask=intersect+occlusion
    """


@mask.command()
@WS_ARG
@click.option("--minutes", type=float, default=None, help="Train for this long.")
@click.option("--iterations", type=int, default=None, help="Train for this many steps.")
@click.option("--resolution", type=int, default=None, help="Crop size the network sees (new networks; default 128).")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: the GPU if there is one).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def train(workspace: Path, minutes: float | None, iterations: int | None, resolution: int | None,
          device: str | None, as_json: bool) -> None:
    """Train (or continue) the occlusion mask network on the workspace's faces and drawn labels."""
    from doppel.occlusion.train import MaskTrainer
    from doppel.workspace import Workspace

    if minutes is None and iterations is None:
        minutes = 5.0
    with Workspace.open(workspace) as ws:
        trainer = MaskTrainer.open(ws, resolution=resolution, device=device)
        result = trainer.train(iterations=iterations, minutes=minutes)
    if as_json:
        _echo_json(result)
        return
    v = result.validation
    click.echo(f"mask network saved at step {result.step} ({result.steps_run} steps, {result.samples_per_s:.1f} "
               f"samples/s, {result.labels} labelled faces); IoU on synthetic occlusions "
               f"{v['iou_synthetic']:.3f} (polygon alone {v['iou_polygon_only']:.3f})"
               + (f", on the labels {v['iou_labels']:.3f}" if "iou_labels" in v else ""))


@mask.command()
@WS_ARG
@click.option("--force", is_flag=True, help="Recompute every mask, even those that are up to date.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def apply(workspace: Path, force: bool, device: str | None, as_json: bool) -> None:
    """Store a temporally smoothed occlusion mask for every face (merge does this by itself when a mask mode
    needs it)."""
    from doppel.occlusion.apply import apply_masks
    from doppel.workspace import Workspace

    with Workspace.open(workspace) as ws, rich_progress() as progress:
        report = apply_masks(ws, force=force, device=device, progress=bind(progress, "mask", "apply"))
    if as_json:
        _echo_json(report)
        return
    click.echo(f"{report.computed} of {report.faces} masks computed ({report.from_labels} from labels) with "
               f"{report.model} in {report.seconds:.1f} s")


def _face_id(ws: Any, face: int | None, frame: int | None) -> int:
    if (face is None) == (frame is None):
        raise DoppelError("give --face ID or --frame N (the chosen target person's face in frame N)")
    if face is not None:
        return face
    target = ws.target()
    found = {f.frame_idx: f for f in ws.faces.of_chosen("target", media_id=target.id)} if target else {}
    if frame not in found:
        raise DoppelError(f"frame {frame} has no face of the chosen target person")
    return found[frame].id


FACE_OPTS = [click.option("--face", type=int, default=None, help="Face id (see `doppel faces`)."),
             click.option("--frame", type=int, default=None, help="Or: the chosen target person's face in frame N.")]


def _face_options(fn: Any) -> Any:
    for opt in reversed(FACE_OPTS):
        fn = opt(fn)
    return fn


@mask.command()
@WS_ARG
@_face_options
@click.option("--add", "add_file", type=click.Path(path_type=Path), default=None,
              help='Add a drawn label from a JSON file ("-": stdin): {"base": "landmarks"|"empty", "shapes": '
                   '[{"mode": "include"|"exclude", "points": [[x, y], ...]}]} in frame pixels.')
@click.option("--undo", is_flag=True, help="Remove the newest version of the face's label.")
@click.option("--confirm", is_flag=True, help="Accept the face's suggested label.")
def label(workspace: Path, face: int | None, frame: int | None, add_file: Path | None, undo: bool,
          confirm: bool) -> None:
    """Add, undo or confirm a face's mask label, or (with none of those) print its versions as JSON."""
    from doppel.occlusion import labels as lab
    from doppel.workspace import Workspace

    if sum((add_file is not None, undo, confirm)) > 1:
        raise DoppelError("give one of --add, --undo, --confirm")
    with Workspace.open(workspace) as ws:
        fid = _face_id(ws, face, frame)
        if add_file is not None:
            try:
                text = sys.stdin.read() if str(add_file) == "-" else add_file.read_text()
                parsed = lab.parse_label(json.loads(text))
            except (OSError, ValueError) as exc:
                raise DoppelError(f"cannot read the label ({exc})", add_file) from exc
            with ws.transaction():
                stored = lab.add_label(ws.occlusion, fid, parsed, "drawn")
            click.echo(f"face #{fid}: label version {stored.version} (drawn, {len(parsed.shapes)} shape(s))")
        elif undo:
            with ws.transaction():
                now_current = lab.undo(ws.occlusion, fid)
            click.echo(f"face #{fid}: " + (f"back to version {now_current.version} ({now_current.kind})"
                                           if now_current else "no label left"))
        elif confirm:
            with ws.transaction():
                stored = lab.confirm(ws.occlusion, fid)
            click.echo(f"face #{fid}: suggestion confirmed as version {stored.version}")
        else:
            _echo_json([{"version": s.version, "kind": s.kind, "origin": s.origin_id, "created_at": s.created_at,
                         **s.label.to_json()} for s in lab.history(ws.occlusion, fid)])


@mask.command()
@WS_ARG
@_face_options
@click.option("--frames", type=int, default=15, show_default=True, help="How far to carry it, each way.")
def propagate(workspace: Path, face: int | None, frame: int | None, frames: int) -> None:
    """Carry a face's drawn label to its neighbouring frames as suggested labels (by the face's motion)."""
    from doppel.occlusion.propagate import propagate as run_propagate
    from doppel.workspace import Workspace

    with Workspace.open(workspace) as ws:
        report = run_propagate(ws, _face_id(ws, face, frame), frames)
    click.echo(f"suggested labels for {len(report.suggested)} face(s)"
               + (f"; stopped at {len(report.stopped_at_labels)} drawn label(s)" if report.stopped_at_labels else ""))

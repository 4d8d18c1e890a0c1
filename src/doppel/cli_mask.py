"""`doppel mask ...`: the occlusion mask's commands (train, apply, label, propagate). Thin, like cli.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from doppel.errors import DoppelError
from doppel.progress import rich_progress

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
    import doppel

    if minutes is None and iterations is None:
        minutes = 5.0
    with doppel.open(workspace) as project, rich_progress() as progress:
        result = project.train_mask(minutes=minutes, iterations=iterations, resolution=resolution, device=device,
                                    progress=progress)
    if as_json:
        click.echo(result.dumps())
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
    import doppel

    with doppel.open(workspace) as project, rich_progress() as progress:
        report = project.apply_mask(force=force, device=device, progress=progress)
    if as_json:
        click.echo(report.dumps())
        return
    click.echo(f"{report.computed} of {report.faces} masks computed ({report.from_labels} from labels) with "
               f"{report.model} in {report.seconds:.1f} s")


def _face_id(project: Any, face: int | None, frame: int | None) -> int:
    if (face is None) == (frame is None):
        raise DoppelError("give --face ID or --frame N (the chosen target person's face in frame N)")
    return face if face is not None else int(project.target_face(frame).id)


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
@click.option("--copy", "copy_frames", type=int, default=None, metavar="N",
              help="Copy the face's label to the next N frames of its track (as drawn labels).")
def label(workspace: Path, face: int | None, frame: int | None, add_file: Path | None, undo: bool,
          confirm: bool, copy_frames: int | None) -> None:
    """Add, undo, confirm or copy a face's mask label, or (with none of those) print its versions as JSON."""
    import doppel

    if sum((add_file is not None, undo, confirm, copy_frames is not None)) > 1:
        raise DoppelError("give one of --add, --undo, --confirm, --copy")
    with doppel.open(workspace) as project:
        fid = _face_id(project, face, frame)
        if add_file is not None:
            try:
                text = sys.stdin.read() if str(add_file) == "-" else add_file.read_text()
                data = json.loads(text)
            except (OSError, ValueError) as exc:
                raise DoppelError(f"cannot read the label ({exc})", add_file) from exc
            if not isinstance(data, dict) or not set(data) <= {"base", "shapes"}:
                raise DoppelError('a label is a JSON object {"base": ..., "shapes": [...]}', add_file)
            now = project.add_mask_label(fid, base=data.get("base", "landmarks"), shapes=data.get("shapes"))
            shapes = len((now.label or {}).get("shapes", []))
            click.echo(f"face #{fid}: label version {now.version} (drawn, {shapes} shape(s))")
        elif undo:
            now = project.undo_mask_label(fid)
            click.echo(f"face #{fid}: " + (f"back to version {now.version} ({now.kind})" if now.version
                                           else "no label left"))
        elif confirm:
            project.confirm_mask_labels(fid)
            click.echo(f"face #{fid}: suggestion confirmed as version {project.mask_label(fid).version}")
        elif copy_frames is not None:
            edit = project.copy_mask_label(fid, copy_frames)
            click.echo(f"copied to {len(edit.faces)} face(s)"
                       + (f"; stopped at {len(edit.stopped_at)} drawn label(s)" if edit.stopped_at else ""))
        else:
            _echo_json([{"version": r.version, "kind": r.kind, "origin": r.origin, **(r.label or {})}
                        for r in project.mask_label_history(fid)])


@mask.command()
@WS_ARG
@_face_options
@click.option("--frames", type=int, default=15, show_default=True, help="How far to carry it, each way.")
def propagate(workspace: Path, face: int | None, frame: int | None, frames: int) -> None:
    """Carry a face's drawn label to its neighbouring frames as suggested labels (by the face's motion)."""
    import doppel

    with doppel.open(workspace) as project:
        report = project.propagate_mask(_face_id(project, face, frame), frames)
    click.echo(f"suggested labels for {len(report.faces)} face(s)"
               + (f"; stopped at {len(report.stopped_at)} drawn label(s)" if report.stopped_at else ""))

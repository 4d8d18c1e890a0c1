"""The `doppel` command line: parse arguments, call the library, print. No logic of its own lives here."""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from doppel import __version__
from doppel.errors import DoppelError
from doppel.progress import progress_bars, stderr
from doppel.workspace.records import Role

out = Console()
WS_ARG = click.argument("workspace", type=click.Path(path_type=Path))


class DoppelGroup(click.Group):
    """Turns DoppelError into a one-line `error: ...` and exit code 1; Ctrl-C into exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DoppelError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=DoppelGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="doppel")
def cli() -> None:
    """doppel: face replacement for visual effects, with provenance built in.

    \b
    A typical session:
      doppel init shot1
      doppel add shot1 --source actor_a.mp4 --source stills/
      doppel add shot1 --target plate.mp4
      doppel info shot1
    """


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _not_built(command: str, issue: int) -> NoReturn:
    raise DoppelError(f"`doppel {command}` is not built yet (planned in issue #{issue})")


@cli.command()
@WS_ARG
def init(workspace: Path) -> None:
    """Create a new workspace folder with default settings.

    \b
    Example:
      doppel init shot1
    """
    from doppel.workspace import Workspace

    with Workspace.create(workspace) as ws:
        out.print(f"created workspace [bold]{ws.root}[/] (id {ws.id}); settings in {ws.root / 'doppel.toml'}")


@cli.command()
@WS_ARG
@click.option("--source", "sources", multiple=True, type=click.Path(path_type=Path),
              help="Footage of the identity to put in: a video, an image, or a folder of images. Repeatable.")
@click.option("--target", "target", type=click.Path(path_type=Path),
              help="The plate to change: one video, or a folder of frames.")
@click.option("--fps", type=str, default=None,
              help="Frame rate for folders of images, e.g. 24 or 24000/1001 (default from doppel.toml).")
@click.option("--json", "as_json", is_flag=True, help="Print the added media as JSON.")
def add(workspace: Path, sources: tuple[Path, ...], target: Path | None, fps: str | None, as_json: bool) -> None:
    """Probe media and add it to the workspace (all or nothing).

    \b
    Examples:
      doppel add shot1 --source actor.mp4 --source photos/
      doppel add shot1 --target plate.mp4
      doppel add shot1 --target frames/ --fps 24000/1001
    """
    from doppel.ingest import add_media
    from doppel.workspace import Workspace

    if bool(sources) == bool(target):
        raise DoppelError("give either --source PATH... or --target PATH")
    try:
        rate = Fraction(fps) if fps else None
    except (ValueError, ZeroDivisionError) as exc:
        raise DoppelError(f"--fps {fps!r} is not a number or fraction") from exc
    with Workspace.open(workspace) as ws, progress_bars() as new_bar:
        role: Role = "target" if target else "source"
        paths = [target] if target else list(sources)
        ids = add_media(ws, paths, role, fps=rate, progress_for=lambda p: new_bar(f"probe {p.name}"))
        added = [ws.media_by_id(i) for i in ids]
    if as_json:
        _print_json([m.to_json() for m in added])
        return
    for m in added:
        i = m.info
        out.print(f"added {m.role} #{m.id} [bold]{m.name}[/]: {i.kind}, {i.width}x{i.height}, "
                  f"{i.frame_count} frames at {float(i.fps):.3f} fps"
                  + (f", {len(i.audio)} audio stream(s)" if i.audio else ""))


@cli.command()
@WS_ARG
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(workspace: Path, as_json: bool) -> None:
    """Summarise a workspace: its media, frames and faces.

    \b
    Example:
      doppel info shot1 --json
    """
    from doppel.workspace import Workspace

    with Workspace.open(workspace) as ws:
        summary = ws.summary()
    if as_json:
        _print_json(summary)
        return
    table = Table(title=f"workspace {summary['workspace']}")
    for col in ("#", "role", "name", "picture", "frames", "audio", "faces"):
        table.add_column(col, overflow="fold", min_width=12 if col == "name" else None)
    for m in summary["media"]:
        num, den = map(int, m["fps"].split("/"))
        picture = (f"{m['kind']} {m['width']}x{m['height']} {num / den:.3f}fps"
                   + (" VFR" if m["variable_frame_rate"] else "") + (f" rot{m['rotation']}" if m["rotation"] else ""))
        frames = str(m["frame_count"]) + (f" ({m['frames_failed']} failed)" if m["frames_failed"] else "")
        table.add_row(str(m["id"]), m["role"], m["name"], picture, frames, str(len(m["audio"])), str(m["faces"]))
    out.print(table)
    out.print(f"frames: {summary['frames']['source']} source, {summary['frames']['target']} target; "
              f"faces: {summary['faces']}")
    for name, model in summary["models"].items():
        out.print(f"model {name}: step {model['step']}")
    if summary["merged_frames"]:
        out.print(f"merged: {summary['merged_frames']} frames ({summary['swapped_frames']} swapped)")


@cli.command()
@WS_ARG
@click.option("--reference", type=click.Path(path_type=Path),
              help="Image of the person in the target to swap (default: the biggest face).")
@click.option("--source-reference", type=click.Path(path_type=Path),
              help="Image of the source identity, when the source footage shows several people.")
@click.option("--workers", type=int, default=None, help="Processes to use (default: one per CPU core).")
@click.option("--redo", is_flag=True, help="Forget earlier results and extract every frame again.")
@click.option("--debug", is_flag=True, help="Also write overlays (box, landmarks, mask, track) to WS/debug/.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def extract(workspace: Path, reference: Path | None, source_reference: Path | None, workers: int | None,
            redo: bool, debug: bool, as_json: bool) -> None:
    """Detect, landmark, align, mask and embed every face; link tracks and people.

    Re-running continues where an interrupted run stopped.

    \b
    Examples:
      doppel extract shot1
      doppel extract shot1 --reference her_face.jpg --debug
    """
    from doppel.extract.debug import write_overlays
    from doppel.extract.run import extract as run_extract
    from doppel.workspace import Workspace

    with Workspace.open(workspace) as ws, progress_bars() as new_bar:
        report = run_extract(ws, workers=workers, reference=reference, source_reference=source_reference,
                             redo=redo, progress_for=lambda m: new_bar(f"extract {m.name}"))
        if debug:
            folder = write_overlays(ws, progress_for=lambda m: new_bar(f"overlays {m.name}"))
    if as_json:
        _print_json(report.to_json())
        return
    for r in report.media:
        speed = f" at {r.fps:.1f} frames/s" if r.processed else " (already done)"
        out.print(f"{r.role} {r.name}: {r.processed} frames processed{speed}; {r.faces} faces"
                  + (f", {r.failed} failed" if r.failed else ""))
    for role, p in report.people.items():
        out.print(f"{role}: {p['people']} people; chosen person #{p['chosen']} ({p['chosen_faces']} faces)")
    for w in report.warnings:
        out.print(f"[yellow]warning:[/] {w}")
    if debug:
        out.print(f"overlays in {folder}")


@cli.command()
@WS_ARG
@click.option("--role", type=click.Choice(["source", "target"]), default="source", show_default=True)
@click.option("--person", default="chosen", show_default=True,
              help="Whose faces: 'chosen' (the swapped / source identity), 'all', or a person id.")
@click.option("--sort", "sort_key", type=click.Choice(["frame", "sharpness", "yaw", "pitch", "size", "identity"]),
              default="frame", show_default=True, help="Order of the listing (identity: nearest to the person).")
@click.option("--limit", type=int, default=20, show_default=True, help="Faces to list (0: all).")
@click.option("--best", type=int, default=None, help="Keep the best N spread over poses; exclude the rest.")
@click.option("--exclude", "exclude_ids", default=None, help="Exclude faces by id, e.g. 12,40-45.")
@click.option("--include", "include_ids", default=None, help="Include faces again by id.")
@click.option("--reason", default="excluded by hand", show_default=True, help="Why (recorded with --exclude).")
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON.")
def faces(workspace: Path, role: str, person: str, sort_key: str, limit: int, best: int | None,
          exclude_ids: str | None, include_ids: str | None, reason: str, as_json: bool) -> None:
    """List, sort and curate face sets. Excluding never deletes anything.

    \b
    Examples:
      doppel faces shot1 --sort sharpness --limit 10
      doppel faces shot1 --best 500
      doppel faces shot1 --exclude 120-135 --reason "hand over face"
      doppel faces shot1 --role target --person all --json
    """
    from doppel.extract import curate
    from doppel.workspace import Workspace

    with Workspace.open(workspace) as ws:
        if exclude_ids:
            n = curate.set_excluded(ws, curate.parse_ids(exclude_ids), True, reason)
            stderr.print(f"excluded {n} face(s)")
        if include_ids:
            n = curate.set_excluded(ws, curate.parse_ids(include_ids), False, "")
            stderr.print(f"included {n} face(s)")
        if best is not None:
            kept, dropped = curate.keep_best(ws, role, best)
            stderr.print(f"kept the best {kept} faces spread over poses; excluded {dropped} more")
        chosen = curate.chosen_person(ws, role)
        listed = curate.sort_faces(curate.face_set(ws, role, person=person), sort_key,
                                   chosen[1] if chosen else None)
    usable = sum(not f.excluded for f in listed)
    shown = listed[:limit] if limit else listed
    if as_json:
        _print_json({"role": role, "person": person, "faces": len(listed), "usable": usable,
                     "listed": [f.to_json() for f in shown]})
        return
    table = Table(title=f"{role} faces ({person}): {len(listed)}, {usable} usable")
    for col in ("id", "media", "frame", "yaw", "pitch", "sharp", "size", "person", "excluded"):
        table.add_column(col)
    for f in shown:
        table.add_row(str(f.id), str(f.media_id), str(f.frame_idx), f"{f.yaw:.0f}", f"{f.pitch:.0f}",
                      f"{f.sharpness:.0f}", f"{f.size_px:.0f}", str(f.person_id), f.exclude_reason or "")
    out.print(table)


@cli.command()
@WS_ARG
@click.option("--preset", default=None, help="Model preset for a new model (see --list-presets; default cpu-64).")
@click.option("--iterations", type=int, default=None, help="Train this many more steps.")
@click.option("--minutes", type=float, default=None, help="Train for this many minutes.")
@click.option("--model", "model_name", default="main", show_default=True, help="Name of the model in the workspace.")
@click.option("--init-from", type=click.Path(path_type=Path), default=None,
              help="Start a new model from another workspace's trained model (same preset).")
@click.option("--batch-size", type=int, default=None, help="Faces per identity per step (global).")
@click.option("--lr", "learning_rate", type=float, default=None, help="Learning rate.")
@click.option("--bf16/--no-bf16", default=None, help="bfloat16 autocast (default: the preset's choice).")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: the GPU if there is one).")
@click.option("--preview-minutes", type=float, default=2.0, show_default=True, help="Write a preview this often.")
@click.option("--checkpoint-minutes", type=float, default=5.0, show_default=True, help="Save this often.")
@click.option("--list-presets", is_flag=True, help="List the presets and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def train(workspace: Path, preset: str | None, iterations: int | None, minutes: float | None, model_name: str,
          init_from: Path | None, batch_size: int | None, learning_rate: float | None, bf16: bool | None,
          device: str | None, preview_minutes: float, checkpoint_minutes: float, list_presets: bool,
          as_json: bool) -> None:
    """Train (or continue training) the face-swap model. Ctrl-C saves and stops.

    On several GPUs or machines, launch through torchrun:
    torchrun --nproc_per_node=4 -m doppel train WS --minutes 600

    \b
    Examples:
      doppel train shot1 --minutes 10
      doppel train shot1 --preset cpu-128 --iterations 20000
      doppel train shot2 --init-from shot1 --minutes 30
    """
    from doppel.train.config import PRESETS

    if list_presets:
        for p in PRESETS.values():
            m = p.model
            out.print(f"[bold]{p.name}[/]: {m.arch} {m.resolution}px, batch {p.train.batch_size} - {p.description}")
        return
    from doppel.train.loop import Budget, Trainer, distributed, process_group
    from doppel.workspace import Workspace

    overrides = {k: v for k, v in (("batch_size", batch_size), ("learning_rate", learning_rate), ("bf16", bf16))
                 if v is not None}
    rank, world = distributed()
    with process_group(device), Workspace.open(workspace) as ws:
        trainer = Trainer.open(ws, name=model_name, preset=preset, device=device, init_from=init_from,
                               overrides=overrides)
        budget = Budget(iterations, minutes, preview_minutes, checkpoint_minutes)
        if rank == 0 and not as_json:
            m = trainer.model_cfg
            out.print(f"model {model_name}: preset {trainer.preset} ({m.arch} {m.resolution}px), step "
                      f"{trainer.step}, on {trainer.device}{f' x{world}' if world > 1 else ''}")
        with progress_bars("it") as new_bar:
            bar = new_bar("train") if rank == 0 and iterations else None
            first = trainer.step

            def report(step: int, last: int | None, figures: dict[str, float]) -> None:
                if bar:
                    bar(step - first, (last or step) - first)

            result = trainer.train(budget, report)
    if rank != 0:
        return
    summary = {"step": result.step, "steps_run": result.steps_run, "seconds": round(result.seconds, 1),
               "samples_per_s": round(result.samples_per_s, 2), "interrupted": result.interrupted,
               "rollbacks": result.rollbacks, "losses": result.losses, "validation": result.validation,
               "checkpoint": str(result.checkpoint), "preview": str(result.preview)}
    if as_json:
        _print_json(summary)
        return
    state = "stopped by you; saved" if result.interrupted else "saved"
    out.print(f"{state} at step {result.step} ({result.steps_run} steps, {result.samples_per_s:.1f} samples/s); "
              f"validation SSIM source {result.validation.get('ssim_src', 0):.3f}, "
              f"target {result.validation.get('ssim_dst', 0):.3f}")
    out.print(f"checkpoint: {result.checkpoint}\npreview:    {result.preview}")


@cli.command()
@WS_ARG
@click.option("--set", "assignments", nargs=2, multiple=True, metavar="FRAMES KEY=VALUE",
              help="Override a [merge] setting for a frame range, e.g. --set 120-180 erode=15. Repeatable.")
@click.option("--list-overrides", is_flag=True, help="List the frame-range overrides and exit.")
@click.option("--clear-overrides", is_flag=True, help="Remove every override (or those given by --remove).")
@click.option("--remove", "remove_ids", default=None, help="Remove overrides by id, e.g. 2,5.")
@click.option("--force", is_flag=True, help="Render every frame again, even those that are up to date.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: the GPU if there is one).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def merge(workspace: Path, assignments: tuple[tuple[str, str], ...], list_overrides: bool, clear_overrides: bool,
          remove_ids: str | None, force: bool, device: str | None, as_json: bool) -> None:
    """Render the swapped face onto every target frame; only frames whose inputs changed are redone.

    Settings come from [merge] in doppel.toml; --set overrides them for a range of frames.

    \b
    Examples:
      doppel merge shot1
      doppel merge shot1 --set 120-180 erode=15 --set 120-180 color=mkl --set 300-320 swap=false
      doppel merge shot1 --list-overrides
    """
    from doppel.extract.curate import parse_ids
    from doppel.merge import overrides as ov
    from doppel.merge.render import merge as run_merge
    from doppel.workspace import Workspace

    with Workspace.open(workspace) as ws:
        target = ws.target()
        if target is None:
            raise DoppelError("the workspace has no target; add one with `doppel add --target`", ws.root)
        for frames, assignment in assignments:
            first, last = ov.parse_range(frames, target.info.frame_count)
            key, value = ov.parse_assignment(assignment)
            oid = ov.add_override(ws, first, last, key, value)
            stderr.print(f"override #{oid}: frames {first}-{last} {key} = {value!r}")
        if clear_overrides or remove_ids:
            n = ov.remove_overrides(ws, parse_ids(remove_ids) if remove_ids else None)
            stderr.print(f"removed {n} override(s)")
        if list_overrides:
            rows = [o.__dict__ for o in ov.list_overrides(ws)]
            if as_json:
                _print_json(rows)
            for o in rows if not as_json else []:
                out.print(f"#{o['id']}: frames {o['first']}-{o['last']} {o['key']} = {o['value']!r}")
            return
        with progress_bars() as new_bar:
            report = run_merge(ws, device=device, force=force, progress=new_bar("merge"))
    if as_json:
        _print_json({**report.__dict__, "fps": round(report.fps, 2)})
        return
    out.print(f"merged {report.frames} frames with model {report.model}: {report.rendered} rendered"
              + (f" at {report.fps:.1f} frames/s" if report.rendered else "")
              + f", {report.cached} up to date, {report.passthrough} without a swap")
    for w in report.warnings:
        out.print(f"[yellow]warning:[/] {w}")


@cli.command()
@WS_ARG
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--codec", type=click.Choice(["h264", "prores", "lossless", "png"]), default=None,
              help="h264 (.mp4), prores (ProRes 4444 .mov), lossless (PNG frames in .mov), png (a folder of "
                   "frames); default from doppel.toml: h264. Every format carries the C2PA manifest.")
@click.option("--crf", type=int, default=None, help="H.264 quality (lower is better).")
@click.option("--layers", type=click.Path(path_type=Path), default=None,
              help="Also write per-frame face RGBA and mask PNGs and transforms.json here, for compositing.")
@click.option("--disclosure", type=click.Choice(["badge", "credits"]), default="badge", show_default=True,
              help="badge: a label on every frame. credits: title cards at the start and end instead, for "
                   "declared artistic, satirical or fictional works.")
@click.option("--disclosure-text", default="AI-generated", show_default=True, help="The disclosure's wording.")
@click.option("--author", default=None, help="Author recorded in the C2PA manifest.")
@click.option("--purpose", default=None, help="Purpose recorded in the manifest, e.g. parody, film, research.")
@click.option("--consent", default=None, help="A reference to the depicted people's consent, for the manifest.")
@click.option("--cert", type=click.Path(path_type=Path), default=None,
              help="Your signing certificate chain (PEM, leaf first); default: the workspace's self-signed one.")
@click.option("--key", type=click.Path(path_type=Path), default=None, help="The private key (PEM) for --cert.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def export(workspace: Path, output: Path, codec: str | None, crf: int | None, layers: Path | None,
           disclosure: str, disclosure_text: str, author: str | None, purpose: str | None, consent: str | None,
           cert: Path | None, key: Path | None, as_json: bool) -> None:
    """Encode the finished shot at the plate's timestamps with its audio, labelled as synthetic media:
    a visible disclosure, an invisible watermark, and (MP4/MOV) a signed C2PA manifest.

    There is no option to leave the labels out.

    \b
    Examples:
      doppel export shot1 shot1.mp4
      doppel export shot1 shot1.mov --codec prores --layers shot1_layers
      doppel export shot1 shot1_frames --codec png
      doppel export shot1 short_film.mp4 --disclosure credits
    """
    from doppel.export.video import export as run_export
    from doppel.provenance import Disclosure
    from doppel.provenance.keys import load_identity
    from doppel.workspace import Workspace

    if (cert is None) != (key is None):
        raise DoppelError("give both --cert and --key, or neither")
    identity = load_identity(cert, key) if cert is not None and key is not None else None
    from doppel.workspace.review import unapproved_warning

    with Workspace.open(workspace) as ws, progress_bars() as new_bar:
        warning = unapproved_warning(ws)
        if warning:
            stderr.print(f"[yellow]warning:[/] {warning}")
        report = run_export(ws, output, codec=codec, crf=crf, layers=layers,
                            disclosure=Disclosure(disclosure, disclosure_text), identity=identity, author=author,
                            purpose=purpose, consent=consent, progress=new_bar("export"))
    summary = {"path": str(report.path), "frames": report.frames, "seconds": round(report.seconds, 2),
               "c2pa": report.c2pa, "self_signed": report.self_signed,
               "codec": report.codec, "audio_streams": report.audio_streams,
               "layers": str(report.layers) if report.layers else None}
    if as_json:
        _print_json(summary)
        return
    out.print(f"wrote {report.path} ({report.frames} frames, {report.codec}, {report.audio_streams} audio "
              f"stream(s) copied) in {report.seconds:.1f} s; watermarked; C2PA manifest signed"
              + (" with the workspace's self-signed certificate" if report.self_signed else ""))
    if report.layers:
        out.print(f"layers in {report.layers}")


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--seconds", type=float, default=10.0, show_default=True,
              help="How much of the video to search for the watermark.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def verify(file: Path, seconds: float, as_json: bool) -> None:
    """Say whether a video is doppel output: its C2PA manifest (valid? tampered? signer, actions,
    ingredients) and its watermark (found even after re-encoding, resizing or cropping strip the manifest).

    Exit code 0: doppel marks found; 3: none found; 1: the file could not be read.

    \b
    Examples:
      doppel verify shot1.mp4
      doppel verify downloaded_clip.mp4 --json
    """
    from doppel.provenance.verify import verify as run_verify

    report = run_verify(file, seconds)
    if as_json:
        _print_json(report.to_json())
    else:
        m = report.manifest
        if not m.present:
            out.print("C2PA manifest: none")
        else:
            trust = " (self-signed / untrusted signer: not on a trust list)" if m.self_signed_or_untrusted else ""
            out.print(f"C2PA manifest: {'VALID' if m.valid else 'INVALID - the file was changed after signing'}"
                      f" ({m.state}); signer {m.signer or '?'}{trust}")
            out.print(f"  actions: {', '.join(m.actions)}; source type: {m.digital_source_type.rsplit('/', 1)[-1]}")
            for ing in m.ingredients:
                out.print(f"  ingredient: {ing['title']} ({ing['relationship']})")
            for problem in m.problems:
                out.print(f"  problem: {problem}")
        wm = (f"FOUND (score {report.watermark_score} > {report.watermark_threshold}, chance of a false alarm "
              f"<= {report.watermark_false_positive_rate:.1e}; workspace tag {report.watermark_tag or 'unreadable'})"
              if report.watermark_found else f"not found (score {report.watermark_score})")
        out.print(f"watermark: {wm} over {report.watermark_frames} frames")
        out.print(f"container metadata says synthetic: {'yes' if report.metadata_says_synthetic else 'no'}")
        out.print("verdict: " + ("doppel output (synthetic media)" if report.marked else "no doppel marks found")
                  + ("; TAMPERED" if report.tampered else ""))
    if not report.marked:
        sys.exit(3)


@cli.command(name="eval")
@WS_ARG
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def evaluate(workspace: Path, as_json: bool) -> None:
    """Identity, expression and flicker figures for the merged shot, with a report and a plot.

    \b
    Example:
      doppel eval shot1
    """
    from doppel.evaluate.metrics import evaluate as run_eval
    from doppel.evaluate.metrics import write_report
    from doppel.workspace import Workspace

    with Workspace.open(workspace) as ws, progress_bars() as new_bar:
        report = run_eval(ws, progress=new_bar("eval"))
        folder = write_report(ws, report)
    if as_json:
        _print_json(report.summary())
        return
    out.print((folder / "report.txt").read_text().rstrip())
    out.print(f"report: {folder / 'report.txt'}, plot: {folder / 'report.png'}")


# -- studio and review (issue 12) ---------------------------------------------------------------------------------
@cli.command()
@WS_ARG
@click.option("--port", type=int, default=0, help="Port on 127.0.0.1 (default: any free port).")
@click.option("--no-browser", is_flag=True, help="Print the URL instead of opening a browser.")
def studio(workspace: Path, port: int, no_browser: bool) -> None:
    """Review and repair the shot frame by frame in the browser (a local web app on 127.0.0.1).

    The printed URL carries a one-run token; keep it private. Ctrl-C stops the studio.

    \b
    Example:
      doppel studio shot1
    """
    from doppel.studio.backend import check_workspace
    from doppel.studio.server import StudioServer

    check_workspace(workspace)
    server = StudioServer(workspace, port=port)
    click.echo(f"doppel studio: {server.url}", err=False)
    if not no_browser:
        import webbrowser

        webbrowser.open(server.url)
    server.serve()


@cli.command()
@WS_ARG
@click.option("--json", "as_json", is_flag=True, help="Print the review state as JSON.")
def review(workspace: Path, as_json: bool) -> None:
    """The shot's review state from the studio: approved frames, ranges, open notes, problem frames left.

    \b
    Example:
      doppel review shot1 --json
    """
    from doppel.studio.backend import review_summary

    summary = review_summary(workspace)
    if as_json:
        _print_json(summary)
        return
    out.print(f"{summary['approved']} of {summary['frames']} frames approved ({summary['approved_pct']} %), "
              f"{summary['needs_work']} need work, {len(summary['open_notes'])} open note(s), "
              f"{len(summary['problem_frames_left'])} problem frame(s) not approved")
    for n in summary["open_notes"]:
        out.print(f"  note #{n['id']} frames {n['first']}-{n['last']}: {n['text']}")


@cli.command()
@click.argument("folder", type=click.Path(path_type=Path), default=Path("demo-out"))
@click.option("--source", type=click.Path(path_type=Path), default=None,
              help="Your own source video (the identity to put in) instead of the bundled one.")
@click.option("--target", type=click.Path(path_type=Path), default=None,
              help="Your own target video (the plate) instead of the bundled one.")
@click.option("--minutes", type=float, default=8.0, show_default=True, help="Training time.")
@click.option("--preset", default="cpu-64", show_default=True, help="Model preset.")
def demo(folder: Path, source: Path | None, target: Path | None, minutes: float, preset: str) -> None:
    """The whole job on a bundled default: ingest, extract, train, merge, export (labelled), evaluate.

    The default clips are made from public-domain portraits that ship with scikit-image (the astronaut
    Eileen Collins) and matplotlib (Grace Hopper). About 10 minutes on a 2-core laptop.

    \b
    Examples:
      doppel demo demo-out
      doppel demo my-demo --source me.mp4 --target plate.mp4 --minutes 30
    """
    from doppel.demo import run_demo

    with progress_bars() as new_bar:
        result = run_demo(folder, source=source, target=target, minutes=minutes, preset=preset,
                          say=out.print, new_bar=new_bar)
    out.print((result.report / "report.txt").read_text().rstrip())
    out.print(f"\nswapped video: {result.video}\nworkspace:     {result.workspace}\n"
              f"training preview: {result.preview}\nevaluation:    {result.report / 'report.txt'} and report.png")


def main() -> None:
    cli(prog_name="doppel")


if __name__ == "__main__":
    main()

"""The `doppel` command line: parse arguments, call the public API (`doppel.api`), print its reports."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

import doppel
from doppel import __version__
from doppel.api import Codec, SortKey
from doppel.errors import DoppelError
from doppel.progress import rich_progress, stderr
from doppel.provenance import DisclosureMode
from doppel.workspace.db import DatabaseError
from doppel.workspace.records import Role

if TYPE_CHECKING:
    from doppel.evaluate.coverage import Coverage

out = Console()


def _remember_workspace(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    ctx.meta["doppel.workspace"] = value  # for naming the database in an error about it
    return value


WS_ARG = click.argument("workspace", type=click.Path(path_type=Path), callback=_remember_workspace)


def _one_line(text: str, limit: int = 200) -> str:
    """`text` as one short printable line: a damaged database's own message can quote raw bytes (newlines,
    control characters) from the damaged row."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    line = " ".join(printable.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class DoppelGroup(click.Group):
    """Turns DoppelError into a one-line `error: ...` and exit code 1; a damaged database into one line too;
    Ctrl-C into exit 130. Anything else unexpected is one line and exit code 2 (DOPPEL_DEBUG=1: traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DoppelError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except DatabaseError as exc:
            ws = ctx.meta.get("doppel.workspace")
            where = f"{os.path.abspath(Path(ws).expanduser() / 'doppel.db')}: " if ws else ""
            detail = _one_line(str(exc))
            click.echo(f"error: {where}workspace database is damaged or unreadable ({detail}); restore doppel.db "
                       "from a backup", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("DOPPEL_DEBUG"):
                raise
            message = _one_line(str(exc))
            click.echo(f"error: internal error ({type(exc).__name__}: {message}); please report it "
                       "(DOPPEL_DEBUG=1 shows the traceback)", err=True)
            ctx.exit(2)


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
    """The one way the CLI prints JSON: reports through their `to_json()`, anything else through `jsonable`."""
    from doppel.reports import jsonable

    click.echo(json.dumps(jsonable(data), indent=2, default=str))


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
    with doppel.create(workspace) as p:
        out.print(f"created workspace [bold]{p.root}[/] (id {p.id}); settings in {p.root / 'doppel.toml'}")


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
    if bool(sources) == bool(target):
        raise DoppelError("give either --source PATH... or --target PATH")
    with doppel.open(workspace) as p, rich_progress() as progress:
        report = p.add(source=list(sources) or None, target=target, fps=fps, progress=progress)
    if as_json:
        _print_json(list(report.media))
        return
    for m in report.media:
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
    with doppel.open(workspace) as p:
        summary = p.info()
    if as_json:
        _print_json(summary)
        return
    table = Table(title=f"workspace {summary.workspace}")
    for col in ("#", "role", "name", "picture", "frames", "audio", "faces"):
        table.add_column(col, overflow="fold", min_width=12 if col == "name" else None)
    for m in summary.media:
        num, den = map(int, m["fps"].split("/"))
        picture = (f"{m['kind']} {m['width']}x{m['height']} {num / den:.3f}fps"
                   + (" VFR" if m["variable_frame_rate"] else "") + (f" rot{m['rotation']}" if m["rotation"] else ""))
        frames = str(m["frame_count"]) + (f" ({m['frames_failed']} failed)" if m["frames_failed"] else "")
        table.add_row(str(m["id"]), m["role"], m["name"], picture, frames, str(len(m["audio"])), str(m["faces"]))
    out.print(table)
    out.print(f"frames: {summary.frames['source']} source, {summary.frames['target']} target; "
              f"faces: {summary.faces}")
    for name, model in summary.models.items():
        out.print(f"model {name}: step {model['step']}")
    if summary.merged_frames:
        out.print(f"merged: {summary.merged_frames} frames ({summary.swapped_frames} swapped)")


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
    with doppel.open(workspace) as p, rich_progress() as progress:
        report = p.extract(reference=reference, source_reference=source_reference, workers=workers, redo=redo,
                           debug=debug, progress=progress)
    if as_json:
        _print_json(report)
        return
    for r in report.media:
        speed = f" at {r.fps:.1f} frames/s" if r.processed else " (already done)"
        out.print(f"{r.role} {r.name}: {r.processed} frames processed{speed}; {r.faces} faces"
                  + (f", {r.failed} failed" if r.failed else ""))
    for role, people in report.people.items():
        out.print(f"{role}: {people['people']} people; chosen person #{people['chosen']} "
                  f"({people['chosen_faces']} faces)")
    for w in report.warnings:
        out.print(f"[yellow]warning:[/] {w}")
    _print_coverage(report.coverage, workspace)
    if report.overlays:
        out.print(f"overlays in {report.overlays}")


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
def faces(workspace: Path, role: Role, person: str, sort_key: SortKey, limit: int, best: int | None,
          exclude_ids: str | None, include_ids: str | None, reason: str, as_json: bool) -> None:
    """List, sort and curate face sets. Excluding never deletes anything.

    \b
    Examples:
      doppel faces shot1 --sort sharpness --limit 10
      doppel faces shot1 --best 500
      doppel faces shot1 --exclude 120-135 --reason "hand over face"
      doppel faces shot1 --role target --person all --json
    """
    with doppel.open(workspace) as p:
        if exclude_ids:
            stderr.print(f"excluded {p.exclude(exclude_ids, reason).excluded} face(s)")
        if include_ids:
            stderr.print(f"included {p.include(include_ids).included} face(s)")
        if best is not None:
            kept = p.keep_best(best, role=role)
            stderr.print(f"kept the best {kept.kept} faces spread over poses; excluded {kept.excluded} more")
        listing = p.faces(role=role, person=person, sort=sort_key, limit=limit or None)
    if as_json:
        _print_json(listing)
        return
    table = Table(title=f"{role} faces ({person}): {listing.faces}, {listing.usable} usable")
    for col in ("id", "media", "frame", "yaw", "pitch", "sharp", "size", "person", "excluded"):
        table.add_column(col)
    for f in listing.listed:
        table.add_row(str(f.id), str(f.media_id), str(f.frame_idx), f"{f.yaw:.0f}", f"{f.pitch:.0f}",
                      f"{f.sharpness:.0f}", f"{f.size_px:.0f}", str(f.person_id), f.exclude_reason or "")
    out.print(table)
    _print_coverage(listing.coverage, workspace)


def _print_coverage(cover: Coverage | None, workspace: Path) -> None:
    """The coverage findings (target frames asking for what the source never shows), one line each."""
    if cover is None:
        return
    if not cover.gaps:
        out.print("coverage: the source shows every head pose, eye and mouth opening the target asks for")
    for gap in cover.gaps:
        out.print(f"[yellow]coverage:[/] {gap.message()}")
    out.print(f"coverage plot: {workspace / 'coverage' / 'coverage.png'}")


@cli.command()
@WS_ARG
@click.option("--preset", default=None,
              help="Model preset for a new model (see --list-presets). Default: cpu-128 for a run of 10 minutes "
                   "or 1400 steps or more, cpu-64 for a shorter one.")
@click.option("--iterations", type=int, default=None, help="Train this many more steps.")
@click.option("--minutes", type=float, default=None, help="Train for this many minutes.")
@click.option("--model", "model_name", default="main", show_default=True, help="Name of the model in the workspace.")
@click.option("--init-from", type=click.Path(path_type=Path), default=None,
              help="Start a new model from another workspace's trained model (and its preset).")
@click.option("--batch-size", type=int, default=None, help="Faces per identity per step (global).")
@click.option("--lr", "learning_rate", type=float, default=None, help="Learning rate.")
@click.option("--bf16/--no-bf16", default=None, help="bfloat16 autocast (default: the preset's choice).")
@click.option("--gan-power", type=float, default=None,
              help="Weight of the adversarial (patch discriminator) term, 0 to 10; 0.1 sharpens a model that "
                   "already reconstructs well (kept for later runs; 0 turns it off).")
@click.option("--true-face-power", type=float, default=None,
              help="Weight of the bottleneck-code adversary, 0 to 10: pushes the source's codes towards the "
                   "target's so the swap decodes codes like those the source decoder learnt on; 0.01 is "
                   "DeepFaceLab's usual value (kept for later runs; 0 turns it off).")
@click.option("--random-warp/--no-random-warp", default=None,
              help="Warp the training inputs at random (on by default). Turn it off for a last phase once the "
                   "swap looks right, as DeepFaceLab users do (kept for later runs).")
@click.option("--seed", type=int, default=None,
              help="Seed of a new model's starting weights and batches (default 0): the same seed and faces train "
                   "the same model; another seed gives a second draw to compare.")
@click.option("--gaze/--no-gaze", default=None,
              help="A new model's expression code also says where the target's eyes look and how far its lids "
                   "close, so the swapped eyes follow its glances (off by default: on a target that glances "
                   "often the identity test picks the source less often). Chosen when a model is made.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: the GPU if there is one).")
@click.option("--preview-minutes", type=float, default=2.0, show_default=True, help="Write a preview this often.")
@click.option("--checkpoint-minutes", type=float, default=5.0, show_default=True, help="Save this often.")
@click.option("--list-presets", is_flag=True, help="List the presets and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def train(workspace: Path, preset: str | None, iterations: int | None, minutes: float | None, model_name: str,
          init_from: Path | None, batch_size: int | None, learning_rate: float | None, bf16: bool | None,
          gan_power: float | None, true_face_power: float | None, random_warp: bool | None, seed: int | None,
          gaze: bool | None, device: str | None, preview_minutes: float, checkpoint_minutes: float, list_presets: bool,
          as_json: bool) -> None:
    """Train (or continue training) the face-swap model. Ctrl-C saves and stops.

    On several GPUs or machines, launch through torchrun:
    torchrun --nproc_per_node=4 -m doppel train WS --minutes 600

    \b
    Examples:
      doppel train shot1 --minutes 10
      doppel train shot1 --preset cpu-128 --iterations 20000
      doppel train shot2 --init-from shot1 --minutes 30
      doppel train shot1 --gan-power 0.1 --minutes 60     # sharpen a model that already looks right
    """
    if list_presets:
        for info in doppel.presets():
            out.print(f"[bold]{info.name}[/]: {info.arch} {info.resolution}px, batch {info.batch_size} - "
                      f"{info.description}")
        return
    with doppel.open(workspace) as p, rich_progress() as progress:
        result = p.train(minutes=minutes, iterations=iterations, preset=preset, model=model_name,
                         init_from=init_from, batch_size=batch_size, learning_rate=learning_rate, bf16=bf16,
                         gan_power=gan_power, true_face_power=true_face_power, random_warp=random_warp,
                         seed=seed, gaze=gaze, device=device,
                         preview_minutes=preview_minutes,
                         checkpoint_minutes=checkpoint_minutes, progress=progress)
    if result.rank != 0:
        return
    if as_json:
        _print_json(result)
        return
    state = "stopped by you; saved" if result.interrupted else "saved"
    out.print(f"model {result.model}: preset {result.preset}, on {result.device}"
              + (f" x{result.world}" if result.world > 1 else ""))
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
    from doppel.merge.overrides import parse_assignment

    with doppel.open(workspace) as p:
        for frames, assignment in assignments:
            o = p.set_override(frames, *parse_assignment(assignment))
            stderr.print(f"override #{o.id}: frames {o.first}-{o.last} {o.key} = {o.value!r}")
        if clear_overrides or remove_ids:
            n = p.remove_overrides(parse_ids(remove_ids) if remove_ids else None)
            stderr.print(f"removed {n} override(s)")
        if list_overrides:
            if as_json:
                _print_json(p.overrides())
            for o in p.overrides() if not as_json else ():
                out.print(f"#{o.id}: frames {o.first}-{o.last} {o.key} = {o.value!r}")
            return
        with rich_progress() as progress:
            report = p.merge(device=device, force=force, progress=progress)
    if as_json:
        _print_json(report)
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
@click.option("--crf", type=int, default=None,
              help="H.264 quality, 0-35 (0-28 for frames under 288 lines); lower is better. Higher CRFs are "
                   "refused: the watermark is not guaranteed to survive them.")
@click.option("--layers", type=click.Path(path_type=Path), default=None,
              help="Also write per-frame face RGBA and mask PNGs and transforms.json here, for compositing.")
@click.option("--disclosure", type=click.Choice(["badge", "credits"]), default="badge", show_default=True,
              help="badge: a label on every frame. credits: title cards at the start and end instead, for "
                   "declared artistic, satirical or fictional works.")
@click.option("--disclosure-text", default="AI-generated", show_default=True,
              help="The disclosure's wording (1-40 characters; it cannot be empty).")
@click.option("--author", default=None, help="Author recorded in the C2PA manifest.")
@click.option("--purpose", default=None, help="Purpose recorded in the manifest, e.g. parody, film, research.")
@click.option("--consent", default=None, help="A reference to the depicted people's consent, for the manifest.")
@click.option("--cert", type=click.Path(path_type=Path), default=None,
              help="Your signing certificate chain (PEM, leaf first); default: the workspace's self-signed one.")
@click.option("--key", type=click.Path(path_type=Path), default=None, help="The private key (PEM) for --cert.")
@click.option("--new-identity", is_flag=True,
              help="Make a new self-signed signing identity when the workspace's keys/ is missing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def export(workspace: Path, output: Path, codec: Codec | None, crf: int | None, layers: Path | None,
           disclosure: DisclosureMode, disclosure_text: str, author: str | None, purpose: str | None,
           consent: str | None, cert: Path | None, key: Path | None, new_identity: bool, as_json: bool) -> None:
    """Encode the finished shot at the plate's timestamps with its audio, labelled as synthetic media:
    a visible disclosure, an invisible watermark, and a signed C2PA manifest.

    There is no option to leave the labels out.

    \b
    Examples:
      doppel export shot1 shot1.mp4
      doppel export shot1 shot1.mov --codec prores --layers shot1_layers
      doppel export shot1 shot1_frames --codec png
      doppel export shot1 short_film.mp4 --disclosure credits
    """
    from doppel.provenance import Disclosure

    try:
        Disclosure(disclosure, disclosure_text)
    except DoppelError as exc:  # an empty, blank or overlong wording is a usage error
        raise click.BadParameter(exc.message, param_hint="--disclosure-text") from exc
    if (cert is None) != (key is None):
        raise DoppelError("give both --cert and --key, or neither")
    from doppel.workspace.review import unapproved_warning

    with doppel.open(workspace) as p, rich_progress() as progress:
        report = p.export(output, codec=codec, crf=crf, layers=layers, disclosure=disclosure,
                          disclosure_text=disclosure_text, author=author, purpose=purpose, consent=consent,
                          cert=cert, key=key, progress=progress, new_identity=new_identity)
        warning = unapproved_warning(p.workspace)  # a warning, not an error: exporting a work in progress is fine
    if warning:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        _print_json(report)
        return
    out.print(f"wrote {report.path} ({report.frames} frames, {report.codec}, {report.audio_streams} audio "
              f"stream(s) copied) in {report.seconds:.1f} s; watermarked; C2PA manifest signed"
              + (" with the workspace's self-signed certificate" if report.self_signed else ""))
    if report.layers:
        out.print(f"layers in {report.layers}")


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--thorough", is_flag=True,
              help="Search every 3-second excerpt for the watermark (default: 8 spread over the whole file).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def verify(file: Path, thorough: bool, as_json: bool) -> None:
    """Say whether a video is doppel output: its C2PA manifest (valid? tampered? signer, actions,
    ingredients) and its watermark (found even after re-encoding, resizing, cropping, mirroring or small
    rotations strip the manifest), with the time ranges that carry it. A damaged file is checked on the
    frames that still decode.

    Exit code 0: doppel marks found; 3: none found; 1: the file could not be read.

    \b
    Examples:
      doppel verify shot1.mp4
      doppel verify downloaded_clip.mp4 --thorough --json
    """
    report = doppel.verify(file, thorough=thorough)
    if as_json:
        _print_json(report)
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
        wm = (f"FOUND (score {report.watermark_score} > {report.watermark_threshold} in the "
              f"{report.watermark_family} search, chance of a false alarm "
              f"<= {report.watermark_false_positive_rate:.1e}; workspace tag {report.watermark_tag or 'unreadable'})"
              if report.watermark_found else f"not found (score {report.watermark_score}, threshold "
                                             f"{report.watermark_threshold})")
        out.print(f"watermark: {wm} over {report.watermark_frames} frames in {len(report.excerpts)} excerpt(s)")
        if report.watermark_ranges:
            out.print("  carried in: " + ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in report.watermark_ranges))
        damaged = report.frames_stated > report.frames_decoded or report.decode_errors
        if damaged or report.decode_method not in ("container", "image", "sequence"):
            out.print(f"  damaged file: {report.frames_decoded} of {report.frames_stated or '?'} frames decoded "
                      f"({report.decode_method}, {report.decode_errors} unreadable part(s))"
                      + "".join(f"; {note}" for note in report.decode_notes))
        out.print(f"container metadata says synthetic: {'yes' if report.metadata_says_synthetic else 'no'}")
        out.print("verdict: " + ("doppel output (synthetic media)" if report.marked else "no doppel marks found")
                  + ("; TAMPERED" if report.tampered else ""))
    if not report.marked:
        sys.exit(3)


@cli.command(name="eval")
@WS_ARG
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def evaluate(workspace: Path, as_json: bool) -> None:
    """Identity, expression dynamics, detail, flicker and seam figures for the merged shot, per-frame problem
    flags, a report, a plot over frames and a sheet of the worst frames.

    \b
    Example:
      doppel eval shot1
    """
    with doppel.open(workspace) as p, rich_progress() as progress:
        report = p.evaluate(progress=progress)
    if as_json:
        _print_json(report)
        return
    assert report.folder is not None
    out.print((report.folder / "report.txt").read_text().rstrip())
    out.print(f"report: {report.folder / 'report.txt'}, plot: {report.folder / 'report.png'}, worst frames: "
              f"{report.folder / 'worst.png'}")


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
    with rich_progress(say=out.print) as progress:
        result = doppel.run_demo(folder, source=source, target=target, minutes=minutes, preset=preset,
                             progress=progress)
    out.print((result.report / "report.txt").read_text().rstrip())
    out.print(f"\nswapped video: {result.video}\nworkspace:     {result.workspace}\n"
              f"training preview: {result.preview}\nevaluation:    {result.report / 'report.txt'} and report.png")


def _register_subgroups() -> None:
    from doppel.cli_mask import mask

    cli.add_command(mask)


_register_subgroups()


def main() -> None:
    cli(prog_name="doppel")


if __name__ == "__main__":
    main()

"""Occlusion mask figures (issue 13), on a generated ground-truth set (benchmarks/mask_truth.py).

  python benchmarks/bench_mask.py [--frames 90] [--zero-minutes 5 | --zero-steps N]
                                  [--label-minutes 5 | --label-steps N] [--keep DIR]

--zero-steps/--label-steps train a fixed number of steps instead of a wall-clock time, so that a figure does
not depend on how busy a shared machine is ("N steps = what M idle minutes give", with the step rate measured
on an idle machine). With --keep DIR the generated set (extracted workspaces, the face model) is kept in DIR and
reused by the next run with the same --frames; each run trains a fresh copy of it.

Builds: akiyo_cif's first frames with a hand, a microphone and a patch of foreman_cif's background moving over
the face (the target); deadline_cif and a static akiyo frame (noise only) as sources. Then measures:
  zero labels    IoU of the visible-face mask on occluded frames after --zero-minutes of training
  merge          occluder pixels in the merged output vs the plate (mean abs grey), merge frames/s
  inference      mask faces/s at 128 px
  stability      frame-to-frame edge motion on the static face, % of the face width
  ten labels     IoU on the other frames after adding 10 drawn labels and --label-minutes more training
  propagation    a polygon carried 15 frames on akiyo and deadline vs the same polygon redrawn there; the
                 hand's outline carried over the generated set vs its true outline
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doppel.demo import write_clip  # noqa: E402
from doppel.extract.masks import rasterize  # noqa: E402
from doppel.media import MediaReader  # noqa: E402
from doppel.merge.plan import subject_faces  # noqa: E402
from doppel.occlusion import labels as lab  # noqa: E402
from doppel.occlusion.apply import MaskPredictor, apply_masks, load_mask  # noqa: E402
from doppel.occlusion.propagate import carry  # noqa: E402
from doppel.occlusion.train import load_crop, polygon_mask  # noqa: E402
from doppel.workspace import Workspace  # noqa: E402
from doppel.workspace.faces import Face  # noqa: E402
from mask_truth import occlude, read_frames  # noqa: E402

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips"


def doppel(*args: object) -> str:
    return subprocess.run([sys.executable, "-m", "doppel", *map(str, args)], check=True, capture_output=True,
                          text=True).stdout


def frame_mask(ws: Workspace, face: Face, rel: str, size: tuple[int, int]) -> np.ndarray:
    """A stored mask in frame pixels: (H, W) float32 in [0, 1]."""
    m = load_mask(ws, rel)
    back = cv2.invertAffineTransform(lab.crop_matrix(face, m.shape[0]))
    return cv2.warpAffine(m, back, size, flags=cv2.INTER_LINEAR, borderValue=0)


def build(work: Path, frames: int) -> tuple[Path, Path, list, list[Face]]:
    """The clean clip's workspace (for true face outlines) and the benchmark workspace (with a face model),
    built once into work/built and reused; the run works on a fresh copy of the benchmark workspace."""
    built = work / "built"
    done = built / f"done-{frames}"
    if not done.exists():
        shutil.rmtree(built, ignore_errors=True)
        built.mkdir(parents=True)
        _build(built, frames)
        done.write_text("ok")
    shutil.rmtree(work / "ws", ignore_errors=True)
    shutil.copytree(built / "ws", work / "ws", symlinks=True)
    with Workspace.open(built / "clean") as w:
        clean_faces = [f for f in w.faces.of_role("target") if f.face_idx == 0]
    kinds = [str(k) for k in np.load(built / "truth.npz")["kinds"]]
    return built / "clean", work / "ws", kinds, clean_faces


def _build(work: Path, frames: int) -> None:
    clean = read_frames(CLIPS / "akiyo_cif.mp4", frames)
    write_clip(work / "clean.mp4", clean, fps=30, tone_hz=None)
    cws = work / "clean"
    doppel("init", cws)
    doppel("add", cws, "--target", work / "clean.mp4")
    doppel("extract", cws, "--workers", "1")
    with Workspace.open(cws) as w:
        clean_faces = [f for f in w.faces.of_role("target") if f.face_idx == 0]
    if [f.frame_idx for f in clean_faces] != list(range(frames)):
        raise SystemExit("the clean clip must have one face in every frame")
    boxes = [np.array([f.polygon[:, 0].min(), f.polygon[:, 1].min(), f.polygon[:, 0].max(), f.polygon[:, 1].max()])
             for f in clean_faces]
    # Real textures from other clips: skin from deadline_cif's face, background from foreman_cif's last frames.
    dl = read_frames(CLIPS / "deadline_cif.mp4", 60)
    write_clip(work / "deadline.mp4", dl, fps=30, tone_hz=None)
    skin = dl[0][95:135, 160:200]
    background = read_frames(CLIPS / "foreman_cif.mp4", 1, start=290)[0][40:200, 40:300]
    occ = occlude(clean, boxes, skin, background)
    write_clip(work / "occluded.mp4", occ.frames, fps=30, tone_hz=None)
    rng = np.random.default_rng(3)
    static = [np.clip(clean[0] + rng.normal(0, 2, clean[0].shape), 0, 255).astype(np.uint8) for _ in range(30)]
    write_clip(work / "static.mp4", static, fps=30, tone_hz=None)
    ws = work / "ws"
    doppel("init", ws)
    doppel("add", ws, "--source", work / "deadline.mp4", "--source", work / "static.mp4")
    doppel("add", ws, "--target", work / "occluded.mp4")
    doppel("extract", ws, "--workers", "1")
    doppel("train", ws, "--preset", "tiny-64", "--iterations", "5")
    np.savez_compressed(work / "truth.npz", masks=np.stack(occ.masks), kinds=np.array(occ.kinds))


def visible_truth(clean_faces: list[Face], occ_masks: np.ndarray, size: tuple[int, int]) -> list[np.ndarray]:
    return [np.where(occ_masks[i] > 127, 0, rasterize(f.polygon, size)).astype(np.uint8)
            for i, f in enumerate(clean_faces)]


def iou_figures(ws: Workspace, truth: list[np.ndarray], kinds: list[str], frames: list[int], size: tuple[int, int]
                ) -> dict[str, float]:
    target = ws.target()
    assert target is not None
    faces = subject_faces(ws, target.id)
    stored = {k: m.path for k, m in ws.occlusion.masks().items()}
    per_kind: dict[str, list[float]] = {}
    poly: list[float] = []
    for i in frames:
        f = faces.get(i)
        if f is None:
            per_kind.setdefault(kinds[i] or "none", []).append(0.0)
            poly.append(0.0)
            continue
        # Masks exist only inside the face's crop (the forehead of a whole_face polygon can reach past it).
        inside = cv2.warpAffine(np.ones((f.crop_size,) * 2, np.float32),
                                cv2.invertAffineTransform(lab.crop_matrix(f, f.crop_size)), size) > 0.5
        truth_in = np.where(inside, truth[i], 0).astype(np.uint8)
        pred = frame_mask(ws, f, stored[f.id], size)
        per_kind.setdefault(kinds[i] or "none", []).append(lab.iou(pred * inside, truth_in))
        poly.append(lab.iou(np.where(inside, rasterize(f.polygon, size), 0).astype(np.uint8), truth_in))
    allv = [v for vs in per_kind.values() for v in vs]
    return {"iou": float(np.mean(allv)), "iou_polygon_only": float(np.mean(poly)),
            **{f"iou_{k}": float(np.mean(v)) for k, v in per_kind.items()}, "frames": len(allv)}


def occluder_figures(ws: Workspace, plate: list[np.ndarray], masks: np.ndarray, truth: list[np.ndarray],
                     clean_faces: list[Face], occluded: list[int], size: tuple[int, int]) -> dict[str, float]:
    """The occluder's pixels in the merged output (ws's renders) vs the plate, mean abs grey, and where the
    difference comes from: occluder pixels the stored mask calls face (the network missed them) against those it
    calls occluded (then only the compositing can leak)."""
    target = ws.target()
    assert target is not None
    rows = {i: r.path for i, r in ws.renders.all().items() if r.path is not None}
    diffs, diffs_face, swapped, missed, from_missed, layer_miss = [], [], [], [], [], []
    target_faces = subject_faces(ws, target.id)
    stored = {k: m.path for k, m in ws.occlusion.masks().items()}
    for i in occluded:
        if i not in rows:
            continue
        out_img = cv2.cvtColor(cv2.imread(str(ws.root / rows[i])), cv2.COLOR_BGR2GRAY).astype(np.float32)
        ref = cv2.cvtColor(plate[i], cv2.COLOR_RGB2GRAY).astype(np.float32)
        occ_px = masks[i] > 127
        face_px = occ_px & (rasterize(clean_faces[i].polygon, size) > 127)
        err = np.abs(out_img - ref)
        diffs.append(err[occ_px].mean())
        diffs_face.append(err[face_px].mean())
        swapped.append(err[(truth[i] > 127)].mean())
        f = target_faces[i]
        miss = (frame_mask(ws, f, stored[f.id], size) >= 0.5) & occ_px
        missed.append(miss.sum() / max(occ_px.sum(), 1))
        from_missed.append(err[miss].sum() / max(occ_px.sum(), 1))
        layer_miss.append(err[occ_px & ~miss].mean() if (occ_px & ~miss).any() else 0.0)
    return {"occluder_abs_grey": float(np.mean(diffs)),
            "occluder_over_face_abs_grey": float(np.mean(diffs_face)),
            "visible_face_abs_grey": float(np.mean(swapped)),
            "occluder_share_mask_missed": float(np.mean(missed)),
            "occluder_abs_grey_from_missed_pixels": float(np.mean(from_missed)),
            "occluder_abs_grey_where_mask_found_it": float(np.mean(layer_miss))}


def edge_motion(masks: list[np.ndarray], width: float) -> float:
    """Mean frame-to-frame displacement of a soft mask's edge, % of `width`: area changed / edge length."""
    out = []
    for a, b in zip(masks, masks[1:], strict=False):
        changed = float(np.abs(a - b).sum())
        edge = cv2.morphologyEx((a > 0.5).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
        length = max(float(edge.sum()) / 2, 1.0)
        out.append(changed / length)
    return 100 * float(np.mean(out)) / width


def label_from_truth(mask: np.ndarray) -> lab.Label:
    """An artist's exact label: the true visible face's outlines (include) and holes (exclude)."""
    contours, hierarchy = cv2.findContours((mask > 127).astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    shapes = []
    for c, h in zip(contours, hierarchy[0], strict=True):
        if len(c) >= 3:
            shapes.append(lab.Shape("exclude" if h[3] >= 0 else "include", c[:, 0].astype(np.float64)))
    shapes.sort(key=lambda s: s.mode == "exclude")
    return lab.Label("empty", tuple(shapes))


def propagation(ws_path: Path, media_role: str, frame0: int, span: int = 15) -> dict[str, float]:
    """Polygons drawn on frame0 from the landmarks (face oval; jaw-and-mouth region) carried `span` frames vs
    the same polygons redrawn from the landmarks there."""
    with Workspace.open(ws_path) as w:
        media = w.media(media_role)[0]
        faces = {f.frame_idx: f for f in w.faces.of_media(media.id) if f.face_idx == 0}
        chain = [faces[frame0 + k] for k in range(span + 1)]
        size = (media.info.width, media.info.height)
        crops = [load_crop(w.root, f, f.crop_size) for f in chain]
        meshes = [w.faces.mesh(f.id)[:, :2] for f in chain]
        with MediaReader(media.info) as reader:
            full = [reader[frame0 + k] for k in range(span + 1)]
    mats = [lab.crop_matrix(f, f.crop_size) for f in chain]
    regions = {"oval": lambda f: f.polygon, "jaw_mouth": lambda f: np.vstack([f.lm68[2:15], f.lm68[[35, 33, 31]]])}
    out = {}
    for name, poly in regions.items():
        label = lab.Label("empty", (lab.Shape("include", poly(chain[0]).astype(np.float64)),))
        carried = carry(label, mats, crops, meshes, full)   # as `doppel mask propagate` does
        flow_only = carry(label, mats, crops)
        ious = [lab.iou(rasterize(c.shapes[0].points, size), rasterize(poly(f), size))
                for c, f in zip(carried, chain[1:], strict=True)]
        still = lab.iou(rasterize(poly(chain[0]), size), rasterize(poly(chain[-1]), size))
        plain = lab.iou(rasterize(flow_only[-1].shapes[0].points, size), rasterize(poly(chain[-1]), size))
        out[name] = {"iou_at_15": ious[-1], "iou_min": min(ious), "iou_at_15_without_mesh": plain,
                     "iou_if_not_moved": still}
    return out


def carry_occluder(ws: Workspace, chain: list[Face], frames: list[np.ndarray], truth: np.ndarray
                   ) -> tuple[float, float, float]:
    """An occluder's true outline on chain[0]'s frame carried along the chain as `doppel mask propagate` does:
    (IoU after 15 frames, lowest IoU on the way, IoU had the outline not moved)."""
    size = (truth.shape[2], truth.shape[1])
    contour = max(cv2.findContours(truth[0], cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0],
                  key=cv2.contourArea)[:, 0].astype(np.float64)
    label = lab.Label("empty", (lab.Shape("include", contour),))
    carried = carry(label, [lab.crop_matrix(f, f.crop_size) for f in chain],
                    [load_crop(ws.root, f, f.crop_size) for f in chain],
                    [ws.faces.mesh(f.id)[:, :2] for f in chain], frames)
    ious = [lab.iou(rasterize(c.shapes[0].points, size), truth[k + 1]) for k, c in enumerate(carried)]
    return ious[-1], min(ious), lab.iou(truth[0], truth[-1])


def timed_merge(ws_path: Path, force: bool = True) -> tuple[dict, float]:
    """`doppel merge [--force]`: its JSON report and the CPU seconds the merge process used (start-up and model
    loading included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    rep = json.loads(doppel("merge", ws_path, *(["--force"] if force else []), "--json"))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return rep, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def merge_speed(ws_path: Path, repeats: int = 2) -> dict[str, float]:
    """CPU seconds per rendered frame of `doppel merge --force` with the landmark mask alone and with
    `landmarks+occlusion` (masks already stored), alternating, after subtracting the CPU of a merge that renders
    nothing (start-up, model loading, planning): the figure a 2-core machine's load does not change much."""
    toml = ws_path / "doppel.toml"
    text = toml.read_text()
    current = next(line for line in text.splitlines() if line.startswith("mask = "))
    out: dict[str, list[float]] = {"landmarks": [], "landmarks+occlusion": []}
    idle = []
    for _ in range(repeats):
        for mode in out:
            toml.write_text(text.replace(current, f'mask = "{mode}"'))
            rep, cpu = timed_merge(ws_path, force=True)
            _, nothing = timed_merge(ws_path, force=False)   # every frame cached now
            idle.append(nothing)
            out[mode].append((cpu - nothing) / max(rep["rendered"], 1))
    toml.write_text(text)
    return {**{f"cpu_ms_per_frame_{k}": 1000 * min(v) for k, v in out.items()},
            "startup_cpu_s": min(idle), "load_average_1min": os.getloadavg()[0]}


def budget(steps: int | None, minutes: float) -> list[object]:
    return ["--iterations", steps] if steps is not None else ["--minutes", minutes]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--zero-minutes", type=float, default=5.0)
    ap.add_argument("--label-minutes", type=float, default=5.0)
    ap.add_argument("--zero-steps", type=int, default=None, help="train this many steps (not minutes) first")
    ap.add_argument("--label-steps", type=int, default=None, help="and this many after adding the labels")
    ap.add_argument("--keep", type=Path, default=None)
    ap.add_argument("--merge-speed-only", action="store_true",
                    help="with --keep DIR of an earlier run: only time merges of DIR/ws (CPU seconds per frame)")
    ap.add_argument("--no-propagation", action="store_true", help="skip the propagation figures (quicker runs)")
    args = ap.parse_args()
    if args.merge_speed_only:
        if args.keep is None or not (args.keep / "ws").is_dir():
            raise SystemExit("--merge-speed-only needs --keep DIR with an earlier run's workspace")
        print(json.dumps(merge_speed(args.keep / "ws"), indent=1))
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_mask."))
    work.mkdir(parents=True, exist_ok=True)
    figures: dict[str, object] = {}
    try:
        t0 = time.perf_counter()
        cws, ws_path, kinds, clean_faces = build(work, args.frames)
        print(f"built the set in {time.perf_counter() - t0:.0f} s", flush=True)
        masks = np.load(work / "built" / "truth.npz")["masks"]
        size = (masks.shape[2], masks.shape[1])
        truth = visible_truth(clean_faces, masks, size)
        inside = [int(((masks[i] > 127) & (rasterize(f.polygon, size) > 127)).sum()) for i, f in enumerate(clean_faces)]
        occluded = [i for i in range(len(kinds)) if inside[i] > 0]
        out = json.loads(doppel("mask", "train", ws_path, *budget(args.zero_steps, args.zero_minutes), "--json"))
        figures["zero_train"] = {k: out[k] for k in ("steps_run", "seconds", "samples_per_s", "validation")}
        with Workspace.open(ws_path) as ws:
            apply_masks(ws)
            figures["zero_labels"] = iou_figures(ws, truth, kinds, occluded, size)
        print("zero labels:", json.dumps(figures["zero_labels"]), flush=True)

        # Merge with the occlusion mask: the occluder's pixels must stay the plate's.
        # The same merge with the landmark mask alone first, under the same load: what the occlusion mask costs.
        toml = ws_path / "doppel.toml"
        toml.write_text(toml.read_text().replace('mask = "intersect"', 'mask = "landmarks"'))
        plain, plain_cpu = timed_merge(ws_path)
        toml.write_text(toml.read_text().replace('mask = "landmarks"', 'mask = "landmarks+occlusion"'))
        rep, rep_cpu = timed_merge(ws_path)
        print(f"load average during the merges: {os.getloadavg()[0]:.1f}", flush=True)
        plate = read_frames(work / "built" / "occluded.mp4", args.frames)
        with Workspace.open(ws_path) as ws:
            occluder = occluder_figures(ws, plate, masks, truth, clean_faces, occluded, size)
        figures["merge"] = {"fps_352x288": rep["fps"], "rendered": rep["rendered"],
                            "fps_352x288_landmarks_only": plain["fps"],
                            "process_cpu_s_occlusion": rep_cpu, "process_cpu_s_landmarks_only": plain_cpu,
                            "load_average_1min": os.getloadavg()[0], **occluder}
        print("merge:", json.dumps(figures["merge"]), flush=True)

        with Workspace.open(ws_path) as ws:
            pred = MaskPredictor(ws)
            faces = ws.faces.of_role("target")[:256]
            crops = np.stack([load_crop(ws.root, f, 128) for f in faces])
            polys = np.stack([polygon_mask(f, 128) for f in faces])
            pred.predict(crops[:32], polys[:32])
            t, cpu = time.perf_counter(), time.process_time()
            pred.predict(crops, polys)
            figures["inference_faces_per_s_128"] = len(faces) / (time.perf_counter() - t)
            # Faces per second of this process's CPU time (both threads): on a busy machine the wall-clock
            # figure measures the other jobs; this one is close to an idle machine's per-core rate.
            figures["inference_faces_per_cpu_s_128"] = len(faces) / (time.process_time() - cpu)
            figures["inference_load_average_1min"] = os.getloadavg()[0]
            static = ws.media("source")[1]
            sfaces = [f for f in ws.faces.of_media(static.id) if f.face_idx == 0]
            stored = {k: m.path for k, m in ws.occlusion.masks().items()}
            soft = [frame_mask(ws, f, stored[f.id], size) for f in sfaces]
            poly = [rasterize(f.polygon, size).astype(np.float32) / 255 for f in sfaces]
            width = float(np.ptp(sfaces[0].polygon[:, 0]))
            figures["static_edge_motion_pct"] = {"occlusion": edge_motion(soft, width),
                                                 "landmark_polygon": edge_motion(poly, width)}
        print("inference/stability:", figures["inference_faces_per_s_128"], figures["static_edge_motion_pct"],
              flush=True)

        # Ten drawn labels, spread over the occluded frames, then more training.
        picks = [occluded[int(k)] for k in np.linspace(0, len(occluded) - 1, 10).round()]
        with Workspace.open(ws_path) as ws:
            target = ws.target()
            assert target is not None
            faces_by_frame = subject_faces(ws, target.id)
            with ws.transaction():
                for i in picks:
                    lab.add_label(ws.occlusion, faces_by_frame[i].id, label_from_truth(truth[i]))
        out = json.loads(doppel("mask", "train", ws_path, *budget(args.label_steps, args.label_minutes), "--json"))
        figures["label_train"] = {k: out[k] for k in ("steps_run", "seconds", "samples_per_s", "validation")}
        with Workspace.open(ws_path) as ws:
            apply_masks(ws)
            others = [i for i in occluded if i not in picks]
            figures["ten_labels"] = iou_figures(ws, truth, kinds, others, size)
            figures["ten_labels_all_other_frames"] = iou_figures(
                ws, truth, kinds, [i for i in range(args.frames) if i not in picks], size)
        print("ten labels:", json.dumps(figures["ten_labels"]), flush=True)
        if args.no_propagation:
            return
        figures["propagation_akiyo"] = propagation(cws, "target", 20)
        figures["propagation_deadline"] = propagation(ws_path, "source", 20)
        print("propagation:", json.dumps({k: figures[k] for k in ("propagation_akiyo", "propagation_deadline")}))
        # Each occluder's outline carried 15 frames over the generated set (they move over the face).
        plate = read_frames(work / "built" / "occluded.mp4", args.frames)
        with Workspace.open(ws_path) as ws:
            target = ws.target()
            assert target is not None
            faces_by_frame = subject_faces(ws, target.id)
            for kind in ("hand", "microphone", "patch"):
                span = [i for i in range(args.frames) if kinds[i] == kind]
                result = []
                for start in span[:len(span) - 15]:
                    result.append(carry_occluder(ws, [faces_by_frame[start + k] for k in range(16)],
                                                 plate[start:start + 16], masks[start:start + 16]))
                first = result[len(span) // 4]   # the start used by earlier runs of this benchmark
                figures[f"propagation_{kind}"] = {
                    "starts": len(result), "iou_at_15_first_quarter_start": first[0],
                    "iou_at_15_mean": float(np.mean([r[0] for r in result])),
                    "iou_at_15_min": float(np.min([r[0] for r in result])),
                    "iou_min_over_all_steps": float(np.min([r[1] for r in result])),
                    "iou_if_not_moved_mean": float(np.mean([r[2] for r in result]))}
        print("occluder propagation:", json.dumps({k: v for k, v in figures.items() if k in
                                                   ("propagation_hand", "propagation_microphone",
                                                    "propagation_patch")}), flush=True)
    finally:
        print(json.dumps(figures, indent=1))
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

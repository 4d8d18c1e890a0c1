"""doppel: a face-replacement studio for visual-effects work, with provenance built in.

The Python API (the `doppel` command is a thin layer over it)::

    import doppel

    source, target = doppel.demo_clips("clips")       # or your own footage
    with doppel.create("shot1") as shot:              # doppel.open("shot1") for an existing workspace
        shot.add(source=source)
        shot.add(target=target)
        shot.extract()
        shot.train(minutes=30)
        shot.merge()
        shot.export("shot1.mp4")                      # always labelled: disclosure, watermark, C2PA
    print(doppel.verify("shot1.mp4").marked)

Every step returns a frozen report with `to_json()`; every step takes `progress=callback`, called as
`callback(stage, done, total, message)`. Errors about the user's input are `doppel.DoppelError`.

The training reports (`TrainReport`, `MaskTrainReport`) live beside their torch training loops; they are
exported lazily (module `__getattr__`), so that `import doppel` does not import torch.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any  # noqa: E402

from doppel.api import (  # noqa: E402
    AddReport,
    CurateReport,
    FaceSetReport,
    InfoReport,
    PresetInfo,
    Project,
    create,
    demo_clips,
    presets,
    run_demo,
    verify,
)
from doppel.api import open_project as open  # noqa: E402
from doppel.api_mask import MaskApplyReport, MaskEditReport, MaskLabelReport  # noqa: E402
from doppel.errors import DoppelError  # noqa: E402
from doppel.progress import ProgressCallback  # noqa: E402
from doppel.reports import Report  # noqa: E402

if TYPE_CHECKING:
    from doppel.occlusion.train import MaskTrainReport
    from doppel.train.loop import TrainReport

_LAZY = {"MaskTrainReport": "doppel.occlusion.train", "TrainReport": "doppel.train.loop"}
"""Exports whose modules import torch: each module is imported when its name is first asked for."""

__all__ = [
    "AddReport", "CurateReport", "DoppelError", "FaceSetReport", "InfoReport", "MaskApplyReport", "MaskEditReport",
    "MaskLabelReport", "MaskTrainReport", "PresetInfo", "ProgressCallback", "Project", "Report", "TrainReport",
    "__version__", "create", "demo_clips", "open", "presets", "run_demo", "verify",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'doppel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

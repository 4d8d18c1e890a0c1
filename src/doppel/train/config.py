"""Model and training configuration: frozen dataclasses, validated on creation, saved beside every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from doppel.errors import DoppelError
from doppel.facetype import FACE_TYPE_NAMES, FaceType

ARCHITECTURES = ("df", "liae")


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "df"
    """`df`: shared encoder and inter, one decoder per identity. `liae`: shared encoder and decoder, inter_AB
    and inter_B; the swap decodes the target's inter_AB code twice."""
    resolution: int = 64
    """Side of the faces the model sees and makes, in pixels (a multiple of 16, 64 to 512)."""
    face_type: FaceType = "whole_face"
    """Crop type of the training faces; must match the workspace's extraction."""
    encoder_dims: int = 32
    """Channels of the first encoder level (doubling at each of four levels)."""
    bottleneck_dims: int = 128
    """Width of the dense bottleneck (the identity-free code)."""
    inter_dims: int = 128
    """Channels of the decoder's lowest-resolution feature map."""
    decoder_dims: int = 32
    """Channels of the last decoder level (doubling towards the bottleneck)."""
    mask_dims: int = 16
    """Channels of the last level of the mask decoder."""
    expression_dims: int = 0
    """Condition the decoders on an expression code (train/expression.py) of this many numbers: 0 (off), 3 (from
    the landmarks: eye and mouth opening, mouth width) or 5 (those and the gaze: where the eyes look and how far
    the lids close, from the faces' blendshape coefficients). The swap then follows the target's eyes and mouth
    even where the source's decoder would not read them from the face."""

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise DoppelError(f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHITECTURES)}")
        if not (64 <= self.resolution <= 512 and self.resolution % 16 == 0):
            raise DoppelError(f"resolution must be a multiple of 16 from 64 to 512, not {self.resolution}")
        if self.face_type not in FACE_TYPE_NAMES:
            raise DoppelError(f"face type must be one of {', '.join(FACE_TYPE_NAMES)}, not {self.face_type!r}")
        if self.expression_dims not in (0, 3, 5):
            raise DoppelError(f"expression_dims must be 0, 3 or 5, not {self.expression_dims}")
        for f in ("encoder_dims", "bottleneck_dims", "inter_dims", "decoder_dims", "mask_dims"):
            if getattr(self, f) < 4:
                raise DoppelError(f"{f} must be at least 4")


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 16
    """Faces per identity per step (the global batch, over all processes)."""
    learning_rate: float = 2e-4
    weight_dssim: float = 10.0
    """Masked structural dissimilarity (DSSIM) on the face."""
    weight_pixel: float = 10.0
    """Masked mean squared error on the face."""
    weight_mask: float = 10.0
    """Mean squared error of the predicted mask."""
    weight_eyes_mouth: float = 300.0
    """Extra mean absolute error on the eyes and mouth (regions drawn from each face's own landmarks and warped
    with it), where a face looks alive. The error is averaged over the whole image, so the weight is large:
    300 is DeepFaceLab's eyes-and-mouth priority; 30 left the swapped mouth static (issue 14)."""
    weight_laplacian: float = 20.0
    """Masked L1 on the Laplacian-pyramid bands of the face: mid-frequency detail (0 turns it off)."""
    balance_expressions: bool = True
    """Sample faces balanced over eye and mouth opening as well as head pose, so the rare blink or wide-open
    mouth is seen as often as the common face."""
    ema_decay: float = 0.999
    """Keep an exponential moving average of the weights (decay per step, ramped up over the first steps) and
    render with it: steadier and sharper than the last step's weights, which jitter with each batch (0: off)."""
    gan_power: float = 0.0
    """Weight of the adversarial term (a patch discriminator on the source face, DeepFaceLab's "GAN power";
    0: off). Sharper detail; turn it on (0.1 is a good start) once the model reconstructs well."""
    true_face_power: float = 0.0
    """Weight of the bottleneck-code adversary (DeepFaceLab's "true face power"; 0: off): the source's codes are
    pushed to look like the target's, so the swap feeds the source decoder codes like those it learnt on. Meant
    to sharpen the swap; 0.1 for 10 minutes on a CPU measured no gain (benchmarks/RESULTS.md)."""
    lr_warmup_steps: int = 100
    """Ramp the learning rate up linearly over the first steps, so the first large gradients of a fresh model
    (in bfloat16) do not throw it into a poor state."""
    hide_expression: float = 0.5
    """Share of training inputs whose eyes and mouth are blurred away, so that a model with an expression code
    must take them from the code (ignored without one)."""
    random_warp: bool = True
    """DeepFaceLab-style random warp of the inputs (the model learns to undo it)."""
    random_flip: bool = True
    color_match: bool = True
    """Match each source face's colour statistics to a random target face (RCT in Lab)."""
    seed: int = 0
    """Seed of the starting weights and of every batch (a batch is a pure function of seed and step)."""
    holdout: float = 0.1
    """Share of each clip's last frames kept out of training, for validation."""
    bf16: bool = False
    """bfloat16 autocast for the forward pass, where the hardware has bf16 arithmetic (CPUs with AVX-512 bf16
    or AMX, recent GPUs); elsewhere training falls back to float32. About 1.7x (CPU) to 7x (H200) faster."""
    compile: bool = False
    """torch.compile the model on GPUs (about 1.5x faster after a minute of compiling; ignored on CPUs)."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise DoppelError("batch size must be at least 1")
        if not 0 < self.learning_rate < 1:
            raise DoppelError("learning rate must be in (0, 1)")
        if not 0 <= self.ema_decay < 1:
            raise DoppelError("ema_decay must be in [0, 1)")
        if not 0 <= self.gan_power <= 10:
            raise DoppelError("gan_power must be in [0, 10]")
        if not 0 <= self.true_face_power <= 10:
            raise DoppelError("true_face_power must be in [0, 10]")
        if self.lr_warmup_steps < 0:
            raise DoppelError("lr_warmup_steps must be at least 0")
        if not 0 <= self.hide_expression <= 1:
            raise DoppelError("hide_expression must be in [0, 1]")
        if not 0 <= self.seed < 2**32:
            raise DoppelError(f"seed must be in [0, 2**32), not {self.seed}")
        if not 0 <= self.holdout < 0.5:
            raise DoppelError("holdout must be in [0, 0.5)")


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)


PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


register_preset(Preset(
    "tiny-64", "A very small 64 px DF for smoke tests and trying a workflow; learns only a blurry face.",
    ModelConfig("df", 64, encoder_dims=8, bottleneck_dims=32, inter_dims=32, decoder_dims=8, mask_dims=4),
    TrainConfig(batch_size=4, learning_rate=5e-4),
))
register_preset(Preset(
    "cpu-64", "64 px DF sized for a 2-core CPU: a recognisable, soft swap in minutes (the default under 10).",
    ModelConfig("df", 64, encoder_dims=32, bottleneck_dims=128, inter_dims=128, decoder_dims=16, mask_dims=8,
                expression_dims=3),
    TrainConfig(batch_size=16, learning_rate=3e-4, bf16=True),
))
register_preset(Preset(
    "cpu-64-liae", "64 px LIAE for a 2-core CPU: the swap goes through the decoder both people share, so it is "
    "sharper than cpu-64's, but it leaks the target's identity (a try-out, not a default).",
    ModelConfig("liae", 64, encoder_dims=32, bottleneck_dims=128, inter_dims=64, decoder_dims=16, mask_dims=8,
                expression_dims=3),
    TrainConfig(batch_size=16, learning_rate=3e-4, bf16=True),
))
register_preset(Preset(
    "cpu-128", "128 px DF for CPUs: four times the pixels of cpu-64; sharper from about 10 minutes on (the "
    "default for runs that long).",
    ModelConfig("df", 128, encoder_dims=24, bottleneck_dims=256, inter_dims=256, decoder_dims=16, mask_dims=8,
                expression_dims=3),
    TrainConfig(batch_size=8, learning_rate=2e-4, bf16=True),
))
register_preset(Preset(
    "gpu-256-df", "256 px DF for one GPU (about SAEHD's default size): hours to a good result.",
    ModelConfig("df", 256, encoder_dims=64, bottleneck_dims=256, inter_dims=256, decoder_dims=64, mask_dims=22,
                expression_dims=3),
    TrainConfig(batch_size=16, learning_rate=1e-4, bf16=True, compile=True),
))
register_preset(Preset(
    "gpu-256-liae", "256 px LIAE for one GPU: follows the target's lighting and expression more closely than DF.",
    ModelConfig("liae", 256, encoder_dims=64, bottleneck_dims=256, inter_dims=256, decoder_dims=64, mask_dims=22,
                expression_dims=3),
    TrainConfig(batch_size=16, learning_rate=1e-4, bf16=True, compile=True),
))
register_preset(Preset(
    "gpu-512-liae", "512 px LIAE for large GPUs or several: days of training, for close-ups.",
    ModelConfig("liae", 512, encoder_dims=80, bottleneck_dims=384, inter_dims=384, decoder_dims=80, mask_dims=24,
                expression_dims=3),
    TrainConfig(batch_size=8, learning_rate=5e-5, bf16=True, compile=True),
))


LONG_RUN_MINUTES = 10.0
"""A run this long or longer gets `cpu-128` when no preset is named; a shorter one `cpu-64`."""
LONG_RUN_STEPS = 1400
"""The same in steps: what `cpu-128` makes in about 10 minutes on a 2-core CPU."""


def default_preset(minutes: float | None = None, iterations: int | None = None) -> str:
    """The preset a new model gets when none is named, from the run's budget (a run stops at whichever of
    `minutes` and `iterations` comes first). Measured on two real pairs (benchmarks/RESULTS.md): from about
    10 minutes on, cpu-128 is the sharper swap (detail 0.43 against 0.30 after 30 minutes) that keeps the
    source's identity better; before that cpu-64's smaller model has learnt more."""
    short = ((minutes is not None and minutes < LONG_RUN_MINUTES)
             or (iterations is not None and iterations < LONG_RUN_STEPS))
    return "cpu-64" if short else "cpu-128"


def to_dict(obj: Any) -> dict[str, Any]:
    return asdict(obj)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise DoppelError(f"unknown {cls.__name__} fields: {', '.join(sorted(unknown))}")
    return cls(**data)

"""Where the offline model files live, and how they are run.

Model files arrive inside registry packages (see ../shared/DEPENDENCIES.md); nothing is downloaded. The
packages are located without importing them (their own Python code needs TensorFlow), and only their model
files are used, through our own thin wrappers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from doppel.errors import DoppelError


def package_file(package: str, *parts: str) -> Path:
    """Path of a data file inside an installed package, without importing the package."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location, *parts)
        if path.is_file():
            return path
    raise DoppelError(f"model file {'/'.join(parts)} of package {package!r} not found; "
                      "run `make setup` (it installs the model packages)")


class TFLiteModel:
    """A LiteRT interpreter with one float input; `run(x)` returns the outputs in declaration order. `model` is
    a .tflite file or its bytes (a model read out of a bundle)."""

    def __init__(self, model: Path | bytes, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        if isinstance(model, bytes):
            self._interpreter = Interpreter(model_content=model, num_threads=threads)
        else:
            self._interpreter = Interpreter(model_path=str(model), num_threads=threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._outputs = [d["index"] for d in self._interpreter.get_output_details()]
        self.input_shape = tuple(int(s) for s in self._interpreter.get_input_details()[0]["shape"])

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        self._interpreter.set_tensor(self._input, np.ascontiguousarray(x, dtype=np.float32))
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(i) for i in self._outputs]

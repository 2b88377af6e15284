"""FusionGraph for Python: YAML fusion graphs compiled and run on the CPU with oneDNN, trained
with Keras's semantics, NumPy in and out.

    import fusiongraph as fg
    model = fg.load("graphs/multimodal_fusion.yaml", weights="w.safetensors", threads=2)
    probs = model.run({"text": text, "image": image, "audio": audio})["classifier"]
    history = model.fit(x={...}, y={"classifier": labels}, epochs=5, validation_split=0.1)
    model.save("trained.safetensors")

Every error is a :class:`GraphError` (a ``ValueError``) with graph-runner's message and its
``file``, ``line``, ``column``, ``node``, ``op``, ``hint`` attributes. See docs/python.md.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from ._core import GraphError
from .callbacks import Callback, CallbackList, History, StopTraining

__all__ = ["load", "load_string", "validate", "precision_names", "Model", "TensorSpec",
           "GraphError", "Callback", "History", "__version__"]

__version__: str = _core.version()

PathLike = Union[str, "os.PathLike[str]"]
ArrayLike = Any  # an ndarray, or what np.asarray takes; raw inputs: str or a sequence of str
Inputs = Union[ArrayLike, Sequence[ArrayLike], Mapping[str, ArrayLike]]


class TensorSpec(NamedTuple):
    """A graph input or output: ``shape`` has ``None`` for the batch and for ``null`` dims."""
    name: str
    shape: Tuple[Optional[int], ...]
    dtype: np.dtype
    raw: bool = False              # inputs: takes raw values (file paths, texts)
    classes: Tuple[str, ...] = ()  # outputs: class names of a category output


def _error(message: str, hint: str = "") -> GraphError:
    err = GraphError(message + (f"\nhint: {hint}" if hint else ""))
    err.message, err.hint = message, hint or None
    for name in ("file", "line", "column", "node", "op", "input", "tensor"):
        setattr(err, name, None)
    return err


def _path(value: Any) -> Optional[str]:
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    return None


def load(path: PathLike, weights: Optional[PathLike] = None, *, threads: int = 0,
         init_seed: Optional[int] = None, optimize: bool = True,
         precision: str = "f32") -> "Model":
    """Reads and compiles a graph file.

    Args:
        path: the YAML graph.
        weights: a safetensors file (Keras layouts; a checkpoint of ``fit`` or
            ``graph-runner train`` too). Without it (and without ``init_seed``), the weights are
            Keras-style initial values from the graph's ``training.seed`` (else 0), as
            ``graph-runner train`` starts.
        threads: OpenMP threads for the primitives; 0 = all cores.
        init_seed: Keras-style initial weights from this seed (instead of ``weights``).
        optimize: graph-level plan optimizations (False: one kernel per node).
        precision: the arithmetic, one of :func:`precision_names` (``"f32"``, ``"bf16"``).
            ``"bf16"`` runs dense, conv1d and conv2d with bfloat16 inputs and weights (f32
            accumulation; inputs, outputs and every other op stay f32) where the CPU has native
            bf16 (AVX-512 BF16); elsewhere the model runs in f32 and :meth:`Model.warnings`
            says so. ``evaluate`` runs in it too; ``fit`` always trains in f32. Outputs differ
            from f32 by bf16's roundings (about 0.2 % per value: docs/performance.md).

    Raises:
        GraphError: the graph or the weights are wrong (file, line, column, node, op, hint), or
            ``precision`` is not one of the names (the message lists them).
    """
    w = _path(weights) or ""
    return Model(_core.load(os.fspath(path), w, init_seed, threads, optimize, precision))


def load_string(yaml: str, weights: Optional[PathLike] = None, *, threads: int = 0,
                init_seed: Optional[int] = None, optimize: bool = True,
                file: str = "<string>", precision: str = "f32") -> "Model":
    """As :func:`load`, for YAML text (``file`` names it in messages)."""
    w = _path(weights) or ""
    return Model(_core.load_string(yaml, w, init_seed, threads, optimize, file, precision))


def precision_names() -> List[str]:
    """The precisions :func:`load` accepts, f32 first (``["f32", "bf16"]``)."""
    return list(_core.precision_names())


def validate(path: PathLike) -> List[str]:
    """Compiles a graph without weights (``graph-runner validate``): returns its warnings,
    raises :class:`GraphError` for an error."""
    return list(_core.validate(os.fspath(path)))


def _dims(dims: Optional[Mapping[str, Any]]) -> Dict[str, List[int]]:
    return {k: [int(v)] if isinstance(v, (int, np.integer)) else [int(d) for d in v]
            for k, v in (dims or {}).items()}


def _length(name: str, value: Any) -> int:
    if isinstance(value, str):
        return 1
    if isinstance(value, np.ndarray):
        return int(value.shape[0]) if value.ndim else 1
    return len(value)


def _slice(value: Any, begin: int, end: int) -> Any:
    if isinstance(value, str):
        return value
    return value[begin:end]


def _progress(step: int, steps: int, start: float) -> None:
    elapsed = time.monotonic() - start
    line = f"\r{_core.progress_bar_text(step, steps)} - {_core.format_step_time(elapsed / step)}"
    sys.stdout.write(line + ("\n" if step == steps else ""))
    sys.stdout.flush()


class Model:
    """A compiled graph with its weights; made by :func:`load` / :func:`load_string`.

    ``run`` and ``predict`` may be called from several threads at once (the GIL is released
    while the graph runs). ``fit``, ``evaluate`` and ``save`` train and keep an optimizer and
    epoch count between calls, as a Keras model does.
    """

    def __init__(self, impl: "_core.Model") -> None:
        self._impl = impl
        self.stop_training = False
        self.history: Optional[History] = None

    # -- description -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._impl.name

    @property
    def threads(self) -> int:
        return self._impl.threads

    @property
    def precision(self) -> str:
        """The precision the model was loaded with (``load(..., precision=...)``)."""
        return self._impl.precision

    @property
    def inputs(self) -> List[TensorSpec]:
        """The graph inputs in file order (name, shape with None, dtype, raw)."""
        return [TensorSpec(n, tuple(s), np.dtype(d), bool(r), ())
                for n, s, d, r in self._impl.inputs()]

    @property
    def outputs(self) -> List[TensorSpec]:
        """The graph outputs in file order (name, shape with None, dtype, class names)."""
        return [TensorSpec(n, tuple(s), np.dtype(d), False, tuple(c))
                for n, s, d, c in self._impl.outputs()]

    @property
    def input_names(self) -> List[str]:
        return [i.name for i in self.inputs]

    @property
    def output_names(self) -> List[str]:
        return [o.name for o in self.outputs]

    @property
    def warnings(self) -> List[str]:
        """The compiler's and the weights' warnings, formatted as graph-runner prints them."""
        return list(self._impl.warnings())

    def summary(self, print_fn: Any = print, batch: Optional[int] = None,
                dims: Optional[Mapping[str, Union[int, Sequence[int]]]] = None) -> None:
        """Prints Keras's summary table (``graph-runner summary``): layers, output shapes,
        parameters, FLOPs per sample. ``batch`` fills the batch dim (default None); ``dims``
        the inputs' null dims, e.g. ``{"text": 100, "audio": 16000}`` (``--dim``), so that
        every FLOP count is known."""
        print_fn(self._impl.summary(batch or 0, _dims(dims)).rstrip("\n"))

    def summary_dict(self, batch: Optional[int] = None,
                     dims: Optional[Mapping[str, Union[int, Sequence[int]]]] = None
                     ) -> Dict[str, Any]:
        """The summary as a dict (``graph-runner summary --json``)."""
        return json.loads(self._impl.summary_json(batch or 0, _dims(dims)))

    def to_dot(self) -> str:
        """The graph in Graphviz's dot language (``graph-runner dot``)."""
        return self._impl.to_dot()

    def __repr__(self) -> str:
        ins = ", ".join(f"{i.name}{i.shape}" for i in self.inputs)
        outs = ", ".join(f"{o.name}{o.shape}" for o in self.outputs)
        return f"<fusiongraph.Model '{self.name}': ({ins}) -> ({outs})>"

    # -- inference ---------------------------------------------------------------------
    def _named(self, x: Inputs, names: List[str], what: str) -> Dict[str, Any]:
        if isinstance(x, Mapping):
            return dict(x)
        if isinstance(x, (list, tuple)) and len(names) > 1:
            if len(x) != len(names):
                raise _error(f"{what}: got {len(x)} values for the {len(names)} {what} "
                             f"{names}", f"pass a dict {{name: array}} or one value per {what[:-1]}")
            return dict(zip(names, x))
        if len(names) == 1:
            return {names[0]: x}
        raise _error(f"the graph has {len(names)} {what} {names}: pass a dict {{name: array}}")

    def run(self, inputs: Inputs) -> Dict[str, np.ndarray]:
        """Runs the graph on one batch: inputs by name (every input, batch first, the same
        batch) -> outputs by name. Arrays of an input's dtype that are C-contiguous are used
        without a copy; others are converted. Inputs that declare ``preprocessing:`` also take
        raw values: a file path or text (one sample) or a list of them."""
        return self._impl.run(self._named(inputs, self.input_names, "inputs"))

    __call__ = run

    def preprocess(self, values: Mapping[str, Any], threads: int = 1) -> Dict[str, np.ndarray]:
        """Raw values (a path / text, or a list of them, per input that declares
        ``preprocessing:``) -> the input arrays the graph runs on (docs/data.md)."""
        return self._impl.preprocess({k: ([v] if isinstance(v, str) else v)
                                      for k, v in values.items()}, threads)

    def predict(self, x: Inputs, batch_size: Optional[int] = None,
                verbose: Union[int, str] = 0) -> Union[np.ndarray, Dict[str, np.ndarray]]:
        """Keras's predict: runs ``x`` in batches of ``batch_size`` (default 32) and joins the
        results; an array for a graph with one output, else a dict by output name."""
        named = self._named(x, self.input_names, "inputs")
        lengths = {k: _length(k, v) for k, v in named.items()}
        if len(set(lengths.values())) > 1:
            raise _error(f"predict: the inputs hold different numbers of samples {lengths}")
        n = next(iter(lengths.values()), 0)
        size = batch_size or 32
        if size < 1:
            raise _error(f"batch_size must be 1 or more, got {size}")
        parts: Dict[str, List[np.ndarray]] = {}
        steps, start = (n + size - 1) // size, time.monotonic()
        for step, begin in enumerate(range(0, n, size), 1):
            piece = {k: _slice(v, begin, min(n, begin + size)) for k, v in named.items()}
            for name, value in self._impl.run(piece).items():
                parts.setdefault(name, []).append(value)
            if verbose == 1 or verbose == "auto":
                _progress(step, steps, start)
        out = {}
        for name, values in parts.items():
            try:
                out[name] = values[0] if len(values) == 1 else np.concatenate(values)
            except ValueError as e:
                raise _error(f"predict: the batches of output '{name}' have different shapes "
                             f"({e})", "give null dims a fixed size, or call run per batch")
        return out[self.output_names[0]] if len(self.output_names) == 1 else out

    # -- weights -------------------------------------------------------------------------
    def get_weights(self) -> Dict[str, np.ndarray]:
        """Copies of the weights, ``"<node>.<param>"`` -> array (Keras layouts)."""
        return self._impl.weights()

    def save(self, path: PathLike) -> None:
        """Writes the weights atomically as safetensors (after fit: a checkpoint that also
        holds the optimizer state and epoch count, which ``fit(resume=path)`` continues and
        :func:`load` reads as plain weights), with the learnt vocabularies and classes."""
        self._impl.save(os.fspath(path))

    def class_names(self, output: str) -> List[str]:
        return list(self._impl.class_names(output))

    # -- training ------------------------------------------------------------------------
    def _data(self, x: Any, y: Any) -> Tuple[Any, Any]:
        path = _path(x)
        if path is not None:
            if y is not None:
                raise _error("fit/evaluate: x is a data path, so y must be None (the targets "
                             "are in the data)")
            return path, None
        if x is None:
            raise _error("fit/evaluate: give x (arrays by input name, or a data folder or "
                         "table path)")
        if y is None:
            raise _error("fit/evaluate: x are arrays, so give y (targets by output name)")
        return (self._named(x, self.input_names, "inputs"),
                self._named(y, self.output_names, "outputs"))

    def fit(self, x: Any = None, y: Any = None, batch_size: Optional[int] = None,
            epochs: Optional[int] = None, verbose: Union[int, str] = "auto",
            callbacks: Optional[Sequence[Any]] = None,
            validation_split: Optional[float] = None, validation_data: Any = None,
            shuffle: Optional[bool] = None, *, checkpoint: Optional[PathLike] = None,
            resume: Optional[PathLike] = None, workers: int = 0,
            cache: Optional[PathLike] = None, skip_bad_rows: bool = False) -> History:
        """Keras's fit, with the graph's ``training:`` section as ``compile``.

        Args:
            x: arrays by input name (a dict; one array for a one-input graph; a list in input
               order), or the path of a data folder / table (docs/data.md), with ``y=None``.
            y: targets by output name (class ids or one-hot, as the loss takes them).
            batch_size, shuffle, validation_split: override the graph's ``training:`` values
               (None keeps them).
            epochs: epochs to train in this call (default: the graph's ``training.epochs``).
               With ``resume``, the total to reach, as ``graph-runner train --resume``.
            verbose: 0 silent, 1 (or "auto") Keras's progress bar, 2 one line per epoch.
            callbacks: Keras-style callbacks (:class:`Callback`).
            validation_data: ``(x_val, y_val)`` or a data path.
            checkpoint: a file written atomically after every epoch (weights, optimizer state,
               epochs done, learnt vocabularies); Ctrl-C leaves the last one intact.
            resume: a checkpoint to continue from (its weights, optimizer state and epoch).
            workers, cache, skip_bad_rows: the table pipeline's settings (``graph-runner train
               --workers --cache --skip-bad-rows``).

        Returns:
            A :class:`History` (also ``model.history``).

        Raises:
            GraphError: data that does not fit the graph (naming the input, file, row), a
                non-finite loss (naming the epoch, step and node), a wrong setting.
            KeyboardInterrupt: Ctrl-C, at the next batch boundary.
        """
        data_x, data_y = self._data(x, y)
        validation: Any = _path(validation_data)
        if validation is None and validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise _error("validation_data must be (x_val, y_val) or a data path")
            validation = (self._named(validation_data[0], self.input_names, "inputs"),
                          self._named(validation_data[1], self.output_names, "outputs"))
        call = _core.FitCall()
        call.epochs, call.batch_size, call.shuffle = epochs, batch_size, shuffle
        call.validation_split = validation_split
        call.checkpoint = _path(checkpoint) or ""
        call.resume = _path(resume) or ""
        call.workers, call.cache_dir = workers, _path(cache) or ""
        call.skip_bad_rows = skip_bad_rows
        call.verbose = 1 if verbose == "auto" else int(verbose)
        history = History()
        user = list(callbacks or [])
        self.stop_training = False
        params = {"verbose": call.verbose, "epochs": epochs}
        cbs = CallbackList(user + [history], self, params)
        self.history = history
        try:
            self._impl.fit(data_x, data_y, validation, cbs, call)
        except StopTraining:
            pass
        return history

    def evaluate(self, x: Any = None, y: Any = None, batch_size: Optional[int] = None,
                 verbose: Union[int, str] = "auto", return_dict: bool = False, *,
                 workers: int = 0, cache: Optional[PathLike] = None,
                 skip_bad_rows: bool = False) -> Union[float, List[float], Dict[str, float]]:
        """Keras's evaluate: the loss and metrics over ``x`` (arrays and ``y``, or a data
        path) in inference mode, in the model's :attr:`precision`. A float when there is only
        the loss, else a list in Keras's order (or a dict with ``return_dict=True``).
        ``workers``, ``cache``, ``skip_bad_rows``: as in :meth:`fit`."""
        data_x, data_y = self._data(x, y)
        call = _core.FitCall()
        call.batch_size, call.workers = batch_size, workers
        call.cache_dir, call.skip_bad_rows = _path(cache) or "", skip_bad_rows
        logs = dict(self._impl.evaluate(data_x, data_y, call))
        if verbose == 1 or verbose == "auto" or verbose == 2:
            print(_core.format_log_values(list(logs.items())).lstrip(" -"))
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    @property
    def epochs_done(self) -> int:
        """Epochs trained so far (a resumed checkpoint's included)."""
        return self._impl.epochs_done()

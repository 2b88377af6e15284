"""Keras-style training callbacks: :class:`Callback`, :class:`History`, and the list that
``Model.fit`` calls (:class:`CallbackList`).

A callback is any object with some of Keras's methods (``on_train_begin``, ``on_epoch_begin``,
``on_train_batch_end``, ``on_epoch_end``, ``on_train_end``); subclass :class:`Callback` to get
no-op defaults. ``fit`` sets ``callback.model`` (through ``set_model``) and ``callback.params``
before training. Setting ``model.stop_training = True`` in ``on_epoch_end`` ends ``fit`` after
that epoch (its checkpoint is written first).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence


class Callback:
    """Base class of training callbacks (Keras's ``keras.callbacks.Callback``)."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: Dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: Dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: Optional[Dict[str, float]] = None) -> None:
        pass

    def on_train_end(self, logs: Optional[Dict[str, float]] = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, float]] = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, float]] = None) -> None:
        pass

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, float]] = None) -> None:
        pass


class History(Callback):
    """What ``fit`` returns: ``history`` maps each log name (``loss``, ``accuracy``,
    ``val_loss``, ...) to its value per epoch, ``epoch`` lists the epochs (from 0), as Keras's
    ``History``."""

    def __init__(self) -> None:
        super().__init__()
        self.history: Dict[str, List[float]] = {}
        self.epoch: List[int] = []

    def on_train_begin(self, logs: Optional[Dict[str, float]] = None) -> None:
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, float]] = None) -> None:
        self.epoch.append(epoch)
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(value)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class StopTraining(Exception):
    """Raised by :class:`CallbackList` when a callback set ``model.stop_training``."""


class CallbackList:
    """Calls every callback in order (what ``fit`` hands to the engine)."""

    def __init__(self, callbacks: Sequence[Any], model: Any, params: Dict[str, Any]) -> None:
        self.callbacks = list(callbacks)
        self.model = model
        for cb in self.callbacks:
            if hasattr(cb, "set_model"):
                cb.set_model(model)
            else:
                cb.model = model
            if hasattr(cb, "set_params"):
                cb.set_params(params)

    def _call(self, method: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, method, None)
            if fn is not None:
                fn(*args)

    def on_train_begin(self, logs: Dict[str, float]) -> None:
        self._call("on_train_begin", logs)

    def on_epoch_begin(self, epoch: int, logs: Dict[str, float]) -> None:
        self._call("on_epoch_begin", epoch, logs)

    def on_train_batch_end(self, batch: int, logs: Dict[str, float]) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, "on_train_batch_end", None) or getattr(cb, "on_batch_end", None)
            if fn is not None:
                fn(batch, logs)

    def on_epoch_end(self, epoch: int, logs: Dict[str, float]) -> None:
        self._call("on_epoch_end", epoch, logs)
        if getattr(self.model, "stop_training", False):
            raise StopTraining()

    def on_train_end(self, logs: Dict[str, float]) -> None:
        self._call("on_train_end", logs)

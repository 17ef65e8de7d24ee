"""The trainer's state after an epoch, and a resume from it.

:func:`snapshot` is what :class:`~artid.training.trainer.Trainer` stores in the trainer-state
file after every epoch (weights of the model and the head, optimiser / scheduler / grad-scaler
states, the best-epoch selections, the history and the recorded setting changes);
:func:`restore` loads it back into a trainer, refusing a state of another method or of other
settings (each change named, :mod:`.runstate`) unless the trainer allows changed settings.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Protocol

from artid.errors import ArtidError
from artid.training import runstate

log = logging.getLogger(__name__)


class Trainer(Protocol):
    """What a snapshot reads and a resume sets of :class:`~artid.training.trainer.Trainer`
    (a protocol, so that this module does not import the trainer that imports it)."""

    method: Any
    opt: Any
    config: Any
    model: Any
    selections: list[Any]
    result: Any
    settings: dict[str, Any]
    out_dir: Path
    resume_changed: bool
    start_epoch: int
    main: bool

    @property
    def state_path(self) -> Path: ...


def snapshot(trainer: Trainer, epoch: int) -> dict[str, Any]:
    """The state to store after ``epoch`` (tensors, and JSON strings for the rest)."""
    head = trainer.method.head
    opt = trainer.opt.state()
    return {
        **opt,
        "optim": json.dumps(opt["optim"]),
        "method": trainer.method.name,
        "epoch": epoch,
        "seed": trainer.config.optim.seed,
        "settings": json.dumps(trainer.settings),
        "model": trainer.model.state_dict(),
        "head": head.state_dict() if head is not None else {},
        "selections": json.dumps([s.state() for s in trainer.selections]),
        "history": json.dumps(trainer.result.history),
        "changes": json.dumps(trainer.result.changes),
    }


def restore(trainer: Trainer) -> bool:
    """Load the trainer state of the trainer's run folder when there is one; return whether it did.

    Raises:
        ArtidError: the state belongs to another method, or was made with other settings
            (each change named) and the trainer's ``resume_changed`` is off.
    """
    st = runstate.read_state(trainer.out_dir)
    if st is None:
        return False
    path, name = trainer.state_path, trainer.method.name
    if st.get("method") != name:
        raise ArtidError(f"{path} belongs to a {st.get('method')!r} run, not {name!r}; "
                         "use another --out folder")
    if "selections" not in st:
        raise ArtidError(f"{path} was written by an older artid; delete it to start over")
    change = runstate.check_resume(st, trainer.settings, trainer.resume_changed, path)
    runstate.load_weights(trainer.model, st["model"], "model", path)
    if trainer.method.head is not None:
        runstate.load_weights(trainer.method.head, st["head"], "head", path)
    result = trainer.result
    result.history = json.loads(st["history"])
    result.changes = json.loads(st.get("changes", "[]"))
    steps = sum(int(r.get("steps", 0)) for r in result.history)
    trainer.opt.load({**st, "optim": json.loads(st["optim"]) if "optim" in st else None}, steps)
    saved = {s["metric"]: s for s in json.loads(st["selections"])}
    for sel in trainer.selections:
        if sel.metric in saved:
            sel.load(saved[sel.metric])
    result.best_epoch = trainer.selections[0].best_epoch
    trainer.start_epoch = int(st["epoch"]) + 1
    if change is not None:
        result.changes.append(change)
        changes = runstate.format_changes(change["changed"]) or change.get("note")
        log.warning("%s: resuming after epoch %d with changed settings: %s", name,
                    st["epoch"], changes)
    if trainer.main:  # an epoch logged but not saved is redone: the log holds the saved history
        runstate.write_log(trainer.out_dir, result.history)
    log.info("resuming %s from %s after epoch %d", name, path, st["epoch"])
    return True

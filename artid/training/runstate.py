"""The trainer state of a run folder: reading it back, and refusing a resume under other settings.

After every epoch the loop stores ``trainer_state.pt`` (model, head, optimiser, scheduler,
grad-scaler, selections, history) together with the settings the run was made with. Resuming
compares those with the settings of the new invocation: any difference is refused, naming each
changed setting by its option with the old and the new value, unless the caller allows it
(``--resume-changed``): then the run continues under the new settings from the saved epoch and
the change is recorded in the state (and ``run.json``). Files are written through
:mod:`artid.files` and read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from artid.errors import ArtidError
from artid.files import atomic_path, write_text
from artid.training.sections import option

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.pt"
LOG_FILE = "log.jsonl"


def read_state(out_dir: Path) -> dict[str, Any] | None:
    """The trainer state stored in ``out_dir`` (None when there is none)."""
    path = Path(out_dir) / STATE_FILE
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise ArtidError(
            f"{path}: cannot read the trainer state ({exc}); delete it to start over"
        ) from None


def save_state(state: dict[str, Any], out_dir: Path) -> None:
    """Write the trainer state atomically (a crash leaves the previous one)."""
    with atomic_path(Path(out_dir) / STATE_FILE) as tmp:
        torch.save(state, tmp)


def write_log(out_dir: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite ``log.jsonl`` to hold exactly ``history`` (one JSON record per line)."""
    write_text(Path(out_dir) / LOG_FILE, "".join(json.dumps(r) + "\n" for r in history))


def append_log(out_dir: Path, record: dict[str, Any], what: str) -> None:
    """Append ``record`` to ``log.jsonl`` (one line) and log its figures."""
    with open(Path(out_dir) / LOG_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    figures = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in record.items())
    log.info("%s %s", what, figures)


def as_json(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as JSON would read them back (tuples become lists, paths strings)."""
    return json.loads(json.dumps(dict(values), default=str))


def changed_settings(saved: Mapping[str, Any], now: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{name: [old, new]}`` for every setting whose value differs (absent: None)."""
    old, new = as_json(saved), as_json(now)
    names = list(new) + [k for k in old if k not in new]
    return {k: [old.get(k), new.get(k)] for k in names if old.get(k) != new.get(k)}


def format_changes(changed: Mapping[str, list[Any]]) -> str:
    """``--lr 0.01 -> 0.001, --amp 'off' -> 'bf16'``."""
    return ", ".join(f"{option(k)} {a!r} -> {b!r}" for k, (a, b) in changed.items())


def check_resume(state: Mapping[str, Any], settings: Mapping[str, Any], allow: bool,
                 path: Path) -> dict[str, Any] | None:
    """Refuse to resume ``state`` under other ``settings``, or describe the change when allowed.

    Args:
        state: the saved trainer state.
        settings: the settings of this invocation, by option name.
        allow: continue with the new settings (``--resume-changed``) instead of refusing.
        path: the state file (for the message).

    Returns:
        None when nothing changed, else the change record ``{"after_epoch", "changed"}``.

    Raises:
        ArtidError: a change (or a state that recorded no settings) and not ``allow``.
    """
    epoch = int(state["epoch"])
    if "settings" not in state:
        if not allow:
            raise ArtidError(
                f"{path} does not record the settings it was made with (an older artid), so a "
                "resume cannot be checked; delete it to start over, or pass --resume-changed to "
                "continue with the current settings")
        return {"after_epoch": epoch, "changed": {}, "note": "the saved state recorded no settings"}
    changed = changed_settings(json.loads(state["settings"]), settings)
    if not changed:
        return None
    if not allow:
        raise ArtidError(
            f"{path}: the run was made with other settings ({format_changes(changed)}); "
            "resume with its settings, use another --out folder, or pass --resume-changed to "
            "continue with the new ones (the change is recorded in the run)")
    return {"after_epoch": epoch, "changed": changed}


def load_weights(module: torch.nn.Module, state: dict[str, Any], what: str, path: Path) -> None:
    """``module.load_state_dict(state)``, a mismatch refused with the file's name."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise ArtidError(
            f"{path}: the saved {what} does not fit this run's ({str(exc).splitlines()[0]}); "
            "use another --out folder or the run's --model") from None

"""Sub-commands of ``artid``.

Each module defines ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; options that
several commands share come from :mod:`artid.commands.common`.

The modules parse and delegate: the work lives in the package's rooms
(data, models, retrieval, evaluation, training, service).
"""

#: Sub-command name -> module name (inside this package), in the order ``artid --help`` lists them.
COMMANDS = {
    "synth": "synth",
    "extract": "extract",
    "evaluate": "evaluate",
    "demo": "demo",
    "train": "train",
    "index": "index",
    "recognize": "recognize",
    "serve": "serve",
    "attributes": "attributes",
}

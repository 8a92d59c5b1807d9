"""``python -m coderic_kernel.cli``: the same as the ``coderic`` command."""

from . import run

run()

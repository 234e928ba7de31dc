"""Sub-commands of the ``tasklle`` CLI: one module each, with ``register(subparsers)``."""

"""The ``robotracer`` command: subcommands are plugins (entry-point group ``robotracer.commands``).

Each plugin is a callable ``register(subparsers) -> None`` that adds one subparser and sets
``func`` (``args -> int`` exit code) as its default. Packages add their own subcommands through
their setup.py entry points, so perception never imports execution or the simulator.
"""

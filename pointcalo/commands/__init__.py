"""The ``pointcalo`` subcommands, grouped by what they do; each module's ``register`` adds its
commands' options to the parser and points each at a thin function that calls the library
(:mod:`pointcalo.cli` holds the entry point and the error boundary)."""

from pointcalo.commands import catalogue, data, evaluation, sampling, training

#: In the order ``pointcalo --help`` lists them.
MODULES = (data, training, sampling, evaluation, catalogue)

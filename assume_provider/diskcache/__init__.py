"""The cross-process disk cache of the chain's final credentials: one small file per chain.

Below the command line so that the library can share through it too: it imports only the
engine's window rule and the settings inputs, never botocore or ``cli/``. Modules:
``key`` (what an entry is keyed on), ``entry`` (the file format), ``store`` (the folder:
read, write, sweep), ``lock`` (single flight across processes). This file imports nothing,
so that the ``credential-process`` cache-hit path pays only for the modules it uses.
"""

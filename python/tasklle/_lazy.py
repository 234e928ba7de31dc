"""Lazy attribute loading for package namespaces: the one helper every
``tasklle`` package ``__init__`` uses.

`import tasklle` stays fast in a notebook: a submodule is imported the first
time one of its names is used (PEP 562 module __getattr__).
"""
import importlib
import sys


def lazy_module(package_name, mapping, submodules=(), cache=False):
    """Return (__getattr__, __dir__) for the package ``package_name``.

    mapping: name -> relative module that defines it (the attribute of that
        module is returned).
    submodules: names that are submodules of the package, returned as the
        module itself (``tasklle.eval.wider`` is the module, not a name in it).
    cache: bind each resolved name in the package, so the lookup runs once.
    """

    def __getattr__(name):
        if name in submodules:
            return importlib.import_module("." + name, package_name)
        try:
            modname = mapping[name]
        except KeyError:
            raise AttributeError(f"module {package_name!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(modname, package_name), name)
        if cache:
            setattr(sys.modules[package_name], name, value)
        return value

    def __dir__():
        return sorted({*vars(sys.modules[package_name]), *mapping, *submodules})

    return __getattr__, __dir__

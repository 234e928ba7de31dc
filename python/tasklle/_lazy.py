"""Lazy attribute loading for package namespaces.

`import tasklle` stays fast in a notebook: a submodule is imported the first
time one of its names is used (PEP 562 module __getattr__).
"""
import importlib


def lazy_module(package_name, mapping):
    """Return (__getattr__, __dir__) resolving names from `mapping`: name -> relative module."""

    def __getattr__(name):
        try:
            modname = mapping[name]
        except KeyError:
            raise AttributeError(f"module {package_name!r} has no attribute {name!r}") from None
        module = importlib.import_module(modname, package_name)
        return getattr(module, name)

    def __dir__():
        return sorted(mapping)

    return __getattr__, __dir__

"""Let ``package.name(...)`` call the function ``name`` even after the module of
the same name was imported.

Importing ``tasklle.losses.spatial_consistency`` (the module) makes Python bind
the package attribute ``spatial_consistency`` to that module, shadowing the
function the lazy map promises. Giving such a module a ``__call__`` that
forwards to its namesake function keeps ``tasklle.losses.spatial_consistency(...)``
working whatever was imported first.
"""
import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return getattr(self, self.__name__.rpartition(".")[2])(*args, **kwargs)


def make_callable(module_name):
    sys.modules[module_name].__class__ = _CallableModule

"""Names a package exports but imports only on first use (PEP 562).

Start-up is mostly imports, so the public packages (:mod:`fastboop`, ``blocks``,
``bootimg``, ``fastboot``, ``rootfs``, ``transports``) re-export their API lazily:
``import fastboop`` — and with it ``fastboop --version`` — must not load the runtime,
and reading one EROFS file must not load the container stack. Each such package names
the module that holds each export and lets :func:`lazy_exports` write the module-level
``__getattr__`` and ``__dir__``::

    __getattr__, __dir__ = lazy_exports(globals(), {"boot": "fastboop.runtime.facade"})

A leading dot names a submodule of the package (``".errors"``). The first lookup imports
the module and stores the value in the package's namespace, so later lookups never call
``__getattr__`` again. Type checkers do not run this: each package keeps its
``if TYPE_CHECKING:`` imports, which give the exported names their real types.

Nothing here imports :mod:`importlib` (``__import__`` and :data:`sys.modules` do the same
job): ``fastboop rootfs cat`` promises to load neither it nor :mod:`typing`
(tests/cli/test_main.py).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs milliseconds
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


def lazy_exports(
    namespace: dict[str, object], table: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` for the exports in ``table``
    (name -> module holding it; ``".sub"`` is relative to the package), where
    ``namespace`` is the package's ``globals()``."""
    package = str(namespace["__name__"])

    def __getattr__(name: str) -> object:
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = package + target if target.startswith(".") else target
        __import__(module)
        value = getattr(sys.modules[module], name)
        namespace[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__

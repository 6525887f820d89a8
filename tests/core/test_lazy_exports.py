"""fastboop.lazy: the one PEP 562 lazy re-export every public package uses."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import pytest

import fastboop
from fastboop.lazy import lazy_exports
from tests.support.imports import python_imports

LAZY_PACKAGES = ("fastboop", "fastboop.blocks", "fastboop.blocks.source", "fastboop.bootimg",
                 "fastboop.fastboot", "fastboop.rootfs", "fastboop.transports")  # fmt: skip


def test_a_name_is_imported_on_first_use_and_then_kept() -> None:
    namespace: dict[str, object] = {"__name__": "fastboop"}
    table = {"FastboopError": ".errors", "Value": "fastboop.values"}
    getattr_, dir_ = lazy_exports(namespace, table)
    assert "FastboopError" not in namespace
    error = getattr_("FastboopError")
    assert error is sys.modules["fastboop.errors"].FastboopError  # ".errors": the package's
    assert namespace["FastboopError"] is error  # kept: the next lookup never gets here
    assert getattr_("Value") is sys.modules["fastboop.values"].Value
    assert dir_() == ["FastboopError", "Value", "__name__"]


def test_an_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    getattr_, _ = lazy_exports({"__name__": "fastboop.example"}, {"known": ".errors"})
    with pytest.raises(AttributeError, match=r"module 'fastboop.example' has no attribute 'nope'"):
        getattr_("nope")
    with pytest.raises(AttributeError, match="no attribute 'frobnicate'"):
        fastboop.frobnicate  # noqa: B018 - the lookup is the test


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_exported_name_resolves_and_is_listed(package: str) -> None:
    module: ModuleType = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        assert name in dir(module), name


def test_every_package_uses_the_one_helper() -> None:
    for package in LAZY_PACKAGES:
        getattr_ = importlib.import_module(package).__getattr__
        assert getattr_.__module__ == "fastboop.lazy", package


def test_the_lookup_needs_no_importlib() -> None:
    """``rootfs cat`` promises not to load importlib (tests/cli/test_main.py); a lazy name
    resolved on that path must not bring it in."""
    probe = python_imports(
        "from fastboop.rootfs import FileType\n"
        "from fastboop.fastboot import FastbootError\n"
        "print(FileType.__name__, FastbootError.__name__)\n"
    )
    assert probe.stdout == "FileType FastbootError\n"
    probe.assert_none_of(("importlib", "typing"))

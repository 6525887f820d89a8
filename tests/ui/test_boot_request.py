"""The page's boot form (ui.boots.BootRequest): every boot option fastboop.BootOptions has,
by its own name, with no second list of them to keep in step."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import pytest

import fastboop
from fastboop.errors import UsageError
from fastboop.runtime.options import DEFAULT_SMOO_MAX_IO
from fastboop.ui.boots import BootRequest


def form_value(field: dataclasses.Field[Any]) -> Any:
    """A value the page could send for ``field`` that is not its default."""
    if field.default is True or field.default is False:
        return not field.default
    if field.name.startswith("smoo_"):
        return 4096 if field.name == "smoo_max_io" else 7
    if field.default == ():
        return [f"{field.name}-1", f"{field.name}-2"]
    return f"{field.name}-value"


def option_fields() -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(fastboop.BootOptions) if f.name != "clock"]


def test_every_boot_option_is_a_form_field_and_reaches_boot_options() -> None:
    form = {field.name: form_value(field) for field in option_fields()}
    request = msgspec.json.decode(msgspec.json.encode({"artifact": "a.ero", **form}),
                                  type=BootRequest)  # fmt: skip
    options = request.options()
    for field in option_fields():
        sent = form[field.name]
        assert getattr(options, field.name) == (tuple(sent) if isinstance(sent, list) else sent)
    assert options.serial_console and not options.impersonate_fastboot
    assert options.dtbo == ("dtbo-1", "dtbo-2") and options.smoo_queue_count == 7


def test_an_empty_form_gives_the_default_options() -> None:
    request = msgspec.json.decode(b'{"artifact": "a.ero"}', type=BootRequest)
    assert request.options() == fastboop.BootOptions()
    assert request.options().smoo_max_io == DEFAULT_SMOO_MAX_IO


def test_empty_text_means_not_given_where_the_option_can_be_unset() -> None:
    request = msgspec.json.decode(
        b'{"artifact": "a.ero", "dtb": "", "ostree": "", "partition": "", "cmdline_append": ""}',
        type=BootRequest,
    )
    options = request.options()
    assert (options.dtb, options.ostree, options.partition) == (None, None, None)
    assert options.cmdline_append == ""


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"artifact": "a", "bogus": 1}', "bogus"),
        (b'{"artifact": "a", "dtbo": "one.dtbo"}', "dtbo"),
        (b'{"artifact": "a", "smoo_max_io": "1m"}', "smoo_max_io"),
        (b'{"artifact": "a", "clock": 1}', "clock"),
    ],
)
def test_the_form_is_typed_and_closed(body: bytes, says: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=says):
        msgspec.json.decode(body, type=BootRequest)


def test_negative_seconds_are_a_usage_error() -> None:
    request = msgspec.json.decode(b'{"artifact": "a.ero", "wait": -1}', type=BootRequest)
    with pytest.raises(UsageError, match="seconds"):
        request.options()

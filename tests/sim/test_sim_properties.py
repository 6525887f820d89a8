"""Property: for any model, the client reports exactly what the simulated phone answers."""

from __future__ import annotations

import anyio
import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from fastboop.fastboot import FastbootClient, FastbootDeviceFailure
from fastboop.sim import CommandBehaviour, load_model, open_sim

BASE = load_model("google-sargo")
_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)
_names = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20
).filter(lambda name: name != "all")  # getvar:all is a listing, not a variable
_behaviours = st.builds(
    CommandBehaviour,
    info=st.lists(_text, max_size=3),
    text=st.lists(_text, max_size=2),
    fail=st.none() | _text,
)


@settings(max_examples=40, deadline=None)
@given(
    table=st.dictionaries(_names, _text, max_size=5),
    behaviours=st.dictionaries(_names.map(lambda n: f"getvar:{n}"), _behaviours, max_size=3),
    asked=st.lists(_names, min_size=1, max_size=6),
)
def test_getvar_reports_what_the_model_says(
    table: dict[str, str], behaviours: dict[str, CommandBehaviour], asked: list[str]
) -> None:
    model = msgspec.structs.replace(BASE, getvar=table, behaviour=behaviours)

    async def scenario() -> None:
        infos: list[str] = []
        client = FastbootClient(open_sim(model), on_info=lambda r: infos.append(r.text))
        for name in asked:
            behaviour = model.behaviour_for(f"getvar:{name}")
            value = model.variable(name)
            before = len(infos)
            try:
                answer = await client.getvar(name)
            except FastbootDeviceFailure as failure:
                expected_failure = behaviour.fail if behaviour.fail is not None else (
                    "GetVar Variable Not found" if value is None else None
                )
                assert failure.device_message == expected_failure
            else:
                assert behaviour.fail is None and value is not None
                assert answer == value
            if len(infos) > before:  # cached answers send nothing, so no chatter either
                assert infos[before:] == [*behaviour.info, *behaviour.text]

    anyio.run(scenario)

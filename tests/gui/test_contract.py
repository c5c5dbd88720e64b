"""engine.api.Library and the GUI tests' fake both implement engine.contract.LibraryContract:
every member the GUI uses exists, and every method has the contract's parameters (names, kinds,
defaults), so a change to one side that the other does not follow fails here."""

from __future__ import annotations

import inspect

import pytest

from engine.api import Library
from engine.contract import LibraryContract
from tests.gui.fake_library import FakeLibrary

DATA = [n for n in LibraryContract.__annotations__]            # plain attributes: paths, settings
MEMBERS = sorted(n for n, v in vars(LibraryContract).items() if not n.startswith("_") and callable(v))
PROPERTIES = sorted(n for n, v in vars(LibraryContract).items() if isinstance(v, property))


def _shape(fn) -> list[tuple[str, object, object]]:
    params = list(inspect.signature(fn).parameters.values())[1:]  # without self
    return [(p.name, p.kind, p.default) for p in params]


def test_the_contract_lists_what_the_gui_uses():
    assert {"index", "train", "search_text", "search_audio", "videos", "list_models", "use_model"} <= set(MEMBERS)
    assert set(PROPERTIES) == {"active_model_id", "models_loaded"} and set(DATA) == {"paths", "settings"}


@pytest.mark.parametrize("impl", [Library, FakeLibrary])
def test_methods_have_the_contract_signatures(impl):
    for name in MEMBERS:
        assert callable(getattr(impl, name, None)), f"{impl.__name__} lacks {name}"
        assert _shape(getattr(impl, name)) == _shape(getattr(LibraryContract, name)), f"{impl.__name__}.{name}"


@pytest.mark.parametrize("impl", [Library, FakeLibrary])
def test_read_only_members_are_there(impl, tmp_path):
    for name in PROPERTIES:
        assert isinstance(inspect.getattr_static(impl, name), property), f"{impl.__name__}.{name}"
    lib = impl(tmp_path / "lib")
    try:
        for name in DATA + PROPERTIES:
            getattr(lib, name)
        assert isinstance(lib.active_model_id, str) and lib.models_loaded is False
    finally:
        lib.close()

"""settings.json: defaults when absent, a clear error naming the file or key when bad, never
overwritten by defaults."""

import json

import pytest

from engine.errors import SettingsError
from engine.library import Settings


def test_missing_file_gives_defaults(tmp_path):
    assert Settings.load(tmp_path / "settings.json") == Settings()


def test_round_trip(tmp_path):
    path = tmp_path / "settings.json"
    Settings(clip_seconds=2.0, transcribe=False).save(path)
    assert Settings.load(path).clip_seconds == 2.0 and not Settings.load(path).transcribe
    assert oct(path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("text,needle", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"clip_seconds": 0}', '"clip_seconds" must be between'),
    ('{"clip_seconds": "4"}', '"clip_seconds" must be float'),
    ('{"transcribe": "yes"}', '"transcribe" must be bool'),
    ('{"excluded_patterns": "*.part"}', '"excluded_patterns" must be a list of strings'),
    ('{"device": "tpu"}', '"device" must be one of'),
])
def test_bad_file_is_a_clear_error_and_is_kept(tmp_path, text, needle):
    path = tmp_path / "settings.json"
    path.write_text(text)
    with pytest.raises(SettingsError) as err:
        Settings.load(path)
    assert needle in str(err.value) and str(path) in str(err.value)
    assert path.read_text() == text


def test_unknown_keys_are_ignored(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"clip_seconds": 3, "future_key": 1}))
    assert Settings.load(path).clip_seconds == 3

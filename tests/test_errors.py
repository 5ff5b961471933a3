"""Every deliberate error survives a process boundary (pickle) as itself: type, message and attributes."""

from __future__ import annotations

import pickle

import pytest

from contrastkit import errors

#: One instance of every ContrastkitError class, built with its own constructor's arguments.
ERRORS: list[errors.ContrastkitError] = [
    errors.ContrastkitError("something is wrong"),
    errors.ConfigError("critic.temperature: must be > 0 (got -1.0)", path="run.toml"),
    errors.InvalidParameter("temperature", "must be > 0", -1.0),
    errors.UnknownNameError("objectives", "infonec", ["infonce", "nt-logistic"]),
    errors.DuplicateNameError("objectives", "infonce", ["a", "b"], disable=["b"]),
    errors.PluginLoadError("plugin 'broken' failed to load: boom"),
    errors.ShapeError("views: expected [B, C, H, W] (got [3, 4])"),
    errors.CheckpointError("ckpt.pt: not a contrastkit checkpoint"),
    errors.TrainingError("loss is nan at step 3"),
]


def test_every_error_class_is_covered() -> None:
    classes = {getattr(errors, name) for name in errors.__all__}
    deliberate = {c for c in classes if isinstance(c, type) and issubclass(c, errors.ContrastkitError)}
    assert deliberate == {type(e) for e in ERRORS}


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_errors_round_trip_through_pickle(error: errors.ContrastkitError) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert back.args == error.args
    assert vars(back) == vars(error)

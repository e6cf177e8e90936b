"""The cluster fit has no calendar offsets (``train.model.calendar_effects``): it refuses
the option rather than fit a model that silently lacks them."""

from __future__ import annotations

import pytest

from training.config.params import Params
from training.scale.models import fit_models_on_cluster


def test_the_cluster_fit_refuses_calendar_effects():
    base = Params()
    model = base.train.model.model_copy(update={"calendar_effects": {"retry": ["local_weekday"]}})
    params = base.model_copy(update={"train": base.train.model_copy(update={"model": model})})
    with pytest.raises(ValueError, match="calendar_effects"):
        fit_models_on_cluster(None, {"retry": {}}, params, False, {})

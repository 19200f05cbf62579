"""Registration refuses drift settings that monitoring could not use, changing nothing."""

from __future__ import annotations

import pytest

from lifecycle import catalog
from lifecycle.spec import SpecError
from tests.conftest import write_toy_spec


def test_bad_drift_table_is_refused_at_registration(store, tmp_path):
    path = write_toy_spec(tmp_path)
    path.write_text(path.read_text() + "\n[drift]\nfdr = 2.0\nwindow_sise = 3\n")
    before = store.row_counts()
    with pytest.raises(SpecError) as err:
        catalog.register_from_file(store, path)
    text = str(err.value)
    assert "`[drift].fdr` must be a number between 0 and 1" in text
    assert "unknown key `[drift].window_sise`" in text
    assert store.row_counts() == before


def test_valid_drift_table_is_stored_with_the_version(store, tmp_path):
    path = write_toy_spec(tmp_path)
    path.write_text(path.read_text() + "\n[drift]\nfdr = 0.01\n")
    catalog.register_from_file(store, path)
    with store.cursor() as cur:
        assert catalog.version_spec(cur, "toy", "1.0")["drift"] == {"fdr": 0.01}

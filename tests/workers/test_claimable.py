"""A claim's rows are built by position (`Claimable(*row)`, the cheapest way), so the
dataclass's fields must be the statement's columns, in its order."""

from dataclasses import fields

import pytest

from workers.claimable import CLAIMABLE_BY_ID, Claimable, _claimable_next_due

FIELD_NAMES = [field.name for field in fields(Claimable)]


def test_the_claim_by_id_reads_the_fields_of_claimable_in_order() -> None:
    assert [column.key for column in CLAIMABLE_BY_ID.selected_columns] == FIELD_NAMES


@pytest.mark.parametrize("webhook_count", [1, 3])
def test_the_next_due_read_has_the_same_columns(webhook_count: int) -> None:
    statement = _claimable_next_due(webhook_count)
    assert [column.key for column in statement.selected_columns] == FIELD_NAMES

"""Text that every database backend can hold.

No backend takes a lone surrogate (U+D800-U+DFFF, which JSON can spell but UTF-8
cannot carry), and PostgreSQL refuses the NUL character (U+0000) in `text` and `jsonb`
values, even as a query parameter, where SQLite takes it. So that no input becomes a
500 (nor a difference between backends), text that would be stored is refused with a
422, and an id or a filter that holds such a character matches nothing (a 404, or no
rows), as no row can hold it.
"""

from typing import Any

from sqlalchemy import ColumnElement, false

UNSTORABLE = "must not contain the NUL character (U+0000) or lone surrogates"


def storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_text(text: str) -> str:
    """A pydantic `AfterValidator` for text that is stored."""
    if not storable(text):
        raise ValueError(UNSTORABLE)
    return text


def storable_optional(text: str | None) -> str | None:
    return None if text is None else storable_text(text)


def equals(column: Any, value: str) -> ColumnElement[bool]:
    """`column == value`, or false when no row can hold `value`."""
    if not storable(value):
        return false()
    condition: ColumnElement[bool] = column == value
    return condition

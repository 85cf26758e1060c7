"""The OpenAPI document as client generators read it: what FastAPI writes, plus the
Problem schema every error answer refers to, and names for the members of each enum
(`x-enum-varnames`, read by openapi-python-client and openapi-typescript), so that
`SuccessStatuses` gets ONLY_200 and ANY_2XX rather than VALUE_0 and VALUE_1."""

from enum import StrEnum
from typing import Any

from fastapi import FastAPI

from app.core import enums
from app.errors import add_problem_schema

ENUMS: dict[str, type[StrEnum]] = {
    name: value
    for name, value in vars(enums).items()
    if isinstance(value, type) and issubclass(value, StrEnum) and value is not StrEnum
}


def name_enum_members(openapi: dict[str, Any]) -> dict[str, Any]:
    for name, schema in openapi.get("components", {}).get("schemas", {}).items():
        enum = ENUMS.get(name)
        if enum is not None and schema.get("enum") == [member.value for member in enum]:
            schema["x-enum-varnames"] = [member.name for member in enum]
    return openapi


def install(app: FastAPI) -> None:
    """Makes app.openapi() build the document described above, once."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = name_enum_members(add_problem_schema(default_openapi()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

"""The routes an app serves, named by method and path with the parameters unnamed."""

import re

from fastapi import FastAPI


def normalize(path: str) -> str:
    """`path` with each `{parameter}` written `{}`."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (METHOD, normalized path) that `app` serves, as its OpenAPI document lists them."""
    return {
        (method.upper(), normalize(path))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }

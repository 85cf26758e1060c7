"""The routes an app serves, named by method and path with the parameters unnamed."""

import re
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute


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


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every APIRoute of `app`, those of included routers too."""
    routes: list[Any] = list(app.router.routes)
    found = []
    while routes:
        route = routes.pop()
        included = getattr(route, "original_router", None)  # FastAPI's _IncludedRouter
        if included is not None:
            routes.extend(included.routes)
        elif isinstance(route, APIRoute):
            found.append(route)
    return found

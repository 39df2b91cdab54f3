"""The Author API's routes, one module per resource (api/adobe/): every route a module of
the package declares belongs to one resource, no two modules serve the same one, and
routes.py only gathers the asset resources' modules (it declares no route itself)."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from fastapi import APIRouter
from fastapi.routing import APIRoute

import assetvault.api.adobe as package
from assetvault.api.adobe import routes

# Paths of one resource: publishing with its two actions, an asset and its original, the
# relations and the types an asset's relations may have.
SAME_RESOURCE = {"unpublish": "publish", "original": "asset", "relationTypes": "relations"}


def resource(path: str) -> str:
    """The resource a path names: what follows the asset id (``asset`` for the asset
    itself), else the first segment under /adobe/assets; the import family and the
    event registrations (at Assetvault's paths and at Adobe I/O Events') by name."""
    parts = [p for p in path.split("/") if p]
    if "registrations" in parts:
        return "registrations"
    if parts[:2] == ["adobe", "import"]:
        return "import"
    assert parts[:2] == ["adobe", "assets"], path
    rest = parts[2:]
    if rest and rest[0] == "{assetId}":
        name = rest[1] if len(rest) > 1 else "asset"
    else:
        name = rest[0] if rest else "assets"
    return SAME_RESOURCE.get(name, name)


def modules() -> list[ModuleType]:
    return [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
    ]


def declared_routes(module: ModuleType) -> list[APIRoute]:
    """The routes of the module's own routers that the module itself declares."""
    return [
        route
        for router in vars(module).values()
        if isinstance(router, APIRouter)
        for route in router.routes
        if isinstance(route, APIRoute) and route.endpoint.__module__ == module.__name__
    ]


def test_each_module_serves_one_resource_and_each_resource_has_one_module() -> None:
    served: dict[str, set[str]] = {}
    for module in modules():
        names = {resource(route.path) for route in declared_routes(module)}
        assert len(names) <= 1, f"{module.__name__} serves {sorted(names)}"
        for name in names:
            served.setdefault(name, set()).add(module.__name__.rsplit(".", 1)[-1])
    shared = {name: sorted(where) for name, where in served.items() if len(where) > 1}
    assert not shared, shared
    # The resources the issue of the split named, and publishing, each in its module.
    assert served["publish"] == {"publish"}
    assert served["registrations"] == {"events"}
    assert served["asset"] == {"assets"}
    assert served["renditions"] == {"renditions"}
    assert served["metadata"] == {"metadata"}


def test_routes_py_only_gathers_the_resource_modules() -> None:
    assert declared_routes(routes) == []
    owners = {
        id(router): module.__name__.rsplit(".", 1)[-1]
        for module in modules()
        if module is not routes
        for router in vars(module).values()
        if isinstance(router, APIRouter)
    }
    gathered = {owners[id(included.original_router)] for included in routes.router.routes}
    assert gathered == {"jobs", "assets", "renditions", "versions", "metadata", "relations"}

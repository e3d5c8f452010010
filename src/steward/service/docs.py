"""Interactive API docs for both services, off by default and never from a CDN.

FastAPI's ``/docs`` page loads Swagger UI from jsDelivr: offline it is blank, and every visit tells a third
party that someone opened the service's docs. With ``docs: true`` the page is served here, with the
Swagger UI files of the ``swagger-ui-bundle`` package; the OpenAPI schema stays at ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any

ASSETS = "/docs/assets"


def mount_docs(app: Any, title: str) -> None:
    """Add ``/docs`` (Swagger UI from local files) to a FastAPI app created with ``docs_url=None``."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Any:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{title} — API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png")

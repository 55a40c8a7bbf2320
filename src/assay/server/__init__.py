"""The HTTP server: a FastAPI app over one workspace, plus the browser UI."""

from assay.server.app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]

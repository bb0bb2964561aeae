"""The help-center web application."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from . import (
    brand,
    caching,
    config,
    dates,
    db,
    errors,
    icons,
    learning,
    search_service,
    security,
    staff,
    tickets,
    views,
    widget,
)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the application: defaults, then the instance config, then ``KB_*`` variables, then tests."""
    instance = (test_config or {}).get("INSTANCE_DIR") or os.environ.get("KB_INSTANCE_DIR") or "instance"
    root = Path(__file__).parent.parent
    app = Flask(__name__, instance_path=str(Path(instance).resolve()), instance_relative_config=True,
                template_folder=str(root / "templates"), static_folder=str(root / "static"))
    app.config.from_mapping(config.defaults())
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("KB")
    if test_config:
        app.config.from_mapping(test_config)
    config.coerce(app.config)
    config.support_settings(app.config)
    app.config["INSTANCE_DIR"] = app.instance_path
    db.init_app(app)
    search_service.init_app(app)
    errors.init_app(app)
    limiter = security.init_app(app)
    caching.init_app(app)
    brand.init_app(app)
    views.register(app)
    widget.init_app(app)
    icons.init_app(app)
    dates.init_app(app)
    security.limit(app, limiter, {"search.results": "RATELIMIT_SEARCH", "api.search": "RATELIMIT_SEARCH",
                                  "feedback.vote": "RATELIMIT_VOTES", "feedback.answer": "RATELIMIT_VOTES",
                                  "search.picked": "RATELIMIT_VOTES",
                                  "widget_api.search": "RATELIMIT_SEARCH", "widget_api.vote": "RATELIMIT_VOTES",
                                  "widget_api.deflection": "RATELIMIT_VOTES", "widget_api.identify": "RATELIMIT_VOTES",
                                  "staff.login": "RATELIMIT_LOGIN",
                                  "staff.password": "RATELIMIT_LOGIN"})  # tickets: kb_site.tickets.allowance

    @app.context_processor
    def _site() -> dict[str, Any]:
        return {"site_name": app.config["SITE_NAME"]}

    staff.init_app(app)
    tickets.init_app(app)
    learning.init_app(app)
    return app

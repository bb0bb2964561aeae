"""The help-center web application."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from . import cli, config, search_service


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the application: defaults, then the instance config, then ``KB_*`` variables, then tests."""
    instance = (test_config or {}).get("INSTANCE_DIR") or os.environ.get("KB_INSTANCE_DIR") or "instance"
    app = Flask(__name__, instance_path=str(Path(instance).resolve()), instance_relative_config=True,
                template_folder="../templates", static_folder="../static")
    app.config.from_mapping(config.defaults())
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("KB")
    if test_config:
        app.config.from_mapping(test_config)
    app.config["INSTANCE_DIR"] = app.instance_path
    search_service.init_app(app)
    cli.init_app(app)
    return app

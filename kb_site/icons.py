"""Category icons in pages: templates call ``category_icon(category)`` for the icon as inline SVG."""

from __future__ import annotations

from flask import Flask
from markupsafe import Markup

from search import icons
from search.folder import Category


def category_icon(category: Category | None) -> Markup:
    """Return a category's icon as inline SVG: its own, its built-in one or the default, hidden from screen readers
    and drawn in the text colour (``currentColor``), 24 by 24 unless CSS sizes ``svg.icon``."""
    if category is None:
        return Markup(icons.builtin_svg(icons.DEFAULT_ICON))
    # inline_icon rebuilds the SVG from an allowlist, escaping every value: safe to mark as markup.
    return Markup(icons.inline_icon(category.icon, category.icon_svg))


def init_app(app: Flask) -> None:
    """Make ``category_icon`` available to every template."""
    app.jinja_env.globals["category_icon"] = category_icon

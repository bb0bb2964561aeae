"""Icons in pages: templates call ``category_icon(category)`` or ``icon(name)`` for the icon as inline SVG."""

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


def icon(name: str) -> Markup:
    """Return a built-in icon (``icon('phone')``) as inline SVG, hidden from screen readers, drawn in the text
    colour; an unknown name is an error in the template, not a missing picture."""
    return Markup(icons.builtin_svg(name))


def init_app(app: Flask) -> None:
    """Make ``category_icon`` and ``icon`` available to every template."""
    app.jinja_env.globals["category_icon"] = category_icon
    app.jinja_env.globals["icon"] = icon

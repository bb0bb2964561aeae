"""``kb staff``: create, list and remove staff accounts, and set their passwords; ``kb link``: the link finder."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from search.engine import SearchEngine, hit_dict

from ..config import search_config
from ..db import database
from ..models import ROLES, aware
from ..search_service import service
from . import StaffError, add_staff, change_password, find_staff, generate_password, remove_staff, staff_accounts


@click.group("staff")
def staff_group() -> None:
    """Manage staff accounts."""


def _save_password(from_stdin: bool, generate: bool, prompt: str, save: Callable[[Session, str], str]) -> None:
    """Read, generate (no terminal: nobody to prompt) or prompt for a password, ``save`` it in one transaction,
    print what ``save`` says and, when generated, the password once."""
    if from_stdin:
        password, generated = sys.stdin.readline().rstrip("\r\n"), False
    elif generate or not sys.stdin.isatty():
        password, generated = generate_password(), True
    else:
        password, generated = click.prompt(prompt, hide_input=True, confirmation_prompt=True), False
    try:
        with database().session() as s:
            said = save(s, password)
    except StaffError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(said)
    if generated:
        click.echo(f"Password (shown once): {password}")


@staff_group.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ROLES),
              help="editor: dashboard and link finder; support: tickets and link finder; admin: everything.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--generate", is_flag=True, help="Generate a password and print it once.")
@with_appcontext
def staff_add_command(email: str, role: str, password_stdin: bool, generate: bool) -> None:
    """Create a staff account (the password is prompted for unless read or generated)."""
    def add(s: Session, password: str) -> str:
        add_staff(s, email, role, password)
        return f"Added {email.lower()} as {role}."

    _save_password(password_stdin, generate, "Password", add)


@staff_group.command("password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@click.option("--generate", is_flag=True, help="Generate a new password and print it once.")
@with_appcontext
def staff_password_command(email: str, password_stdin: bool, generate: bool) -> None:
    """Set a staff account's password; every session of the account ends at once."""
    email = email.strip().lower()

    def change(s: Session, password: str) -> str:
        user = find_staff(s, email)
        if user is None:
            raise StaffError(f"no staff account for {email}")
        ended = change_password(s, user, password)
        return f"Changed the password of {email}; {ended} session{'s' * (ended != 1)} ended."

    _save_password(password_stdin, generate, "New password", change)


@staff_group.command("list")
@with_appcontext
def staff_list_command() -> None:
    """List staff accounts."""
    with database().sessions() as s:
        for user in staff_accounts(s):
            last = aware(user.last_login_at).strftime("%Y-%m-%d %H:%M") if user.last_login_at else "never"
            click.echo(f"{user.email:<40} {user.role:<8} {'active' if user.active else 'disabled':<9} "
                       f"last sign-in {last}")


@staff_group.command("remove")
@click.argument("email")
@with_appcontext
def staff_remove_command(email: str) -> None:
    """Delete a staff account; its sessions end at once."""
    with database().session() as s:
        removed = remove_staff(s, email)
    if not removed:
        raise click.ClickException(f"no staff account for {email}")
    click.echo(f"Removed {email.lower()}.")


LOCAL_SITE = "http://127.0.0.1:8000"  # where `kb serve` listens by default


def _ask_site(site: str, query: str) -> dict[str, Any] | None:
    """Return the best hit from a running site's search API, or None when no site answers in time."""
    import requests

    try:
        response = requests.get(f"{site.rstrip('/')}/api/search", params={"q": query, "limit": "1"},
                                timeout=(0.5, 1.5), headers={"Accept": "application/json"})
        response.raise_for_status()
        found = response.json()
    except (requests.RequestException, ValueError):
        return None
    hits = found.get("hits") if isinstance(found, dict) else None
    return {"hit": hits[0] if hits else None}


@click.command("link")
@click.argument("query")
@click.option("--site", default=LOCAL_SITE, show_default=True,
              help="A running site to ask (its search API answers in milliseconds); the local index is searched "
                   "when it does not answer.")
@click.option("--semantic", is_flag=True,
              help="Without a running site, search semantically too (loads the embedding model: seconds).")
@click.option("--json", "as_json", is_flag=True, help="Print {url, title, section, source} as JSON.")
@with_appcontext
def link_command(query: str, site: str, semantic: bool, as_json: bool) -> None:
    """Print the deep link of the best article for a query (for scripts and reply macros)."""
    svc = service()
    base = svc.config["BASE_URL"].rstrip("/")
    answer = _ask_site(site, query) if site else None
    if answer is not None:
        source, hit = site, answer["hit"]
    else:
        source = "local index" + (" (semantic)" if semantic else " (lexical)")
        engine = svc.engine() if semantic else SearchEngine(svc.index_dir, None, search_config(svc.config))
        found = engine.search(query, limit=1, mode="hybrid" if semantic else "lexical").hits
        hit = hit_dict(found[0]) if found else None
    if hit is None:
        click.echo(f"no article matches {query!r} (asked {source})", err=True)
        sys.exit(1)
    path = str(hit["url"])
    if path.startswith(("http://", "https://")):
        url = path
    elif base:
        url = base + path
    elif answer is not None:
        url = site.rstrip("/") + path
        click.echo(f"KB_BASE_URL is not set: this link points at {site}, the site asked. Set KB_BASE_URL to "
                   "the public address (https://help.example.com) for links customers can open.", err=True)
    else:
        url = path
        click.echo("KB_BASE_URL is not set and no site answered, so this link is relative: set KB_BASE_URL to "
                   "the public address (https://help.example.com).", err=True)
    if as_json:
        click.echo(json.dumps({"url": url, "title": hit["title"], "section": hit.get("section"),
                               "source": source}))
    else:
        click.echo(url)

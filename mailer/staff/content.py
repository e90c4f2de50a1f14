"""The console's content pages: list, add, edit, archive, unarchive and delete meetings, projects and news items.

Forms go through the importer's own rules (``save_item``), so an item saved here is held to
exactly what a JSON import would accept, and a change makes it new for the next digest. Archive,
unarchive and delete are asked on a GET and done by a confirmed POST, through the content service.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from ..content.importer import ContentItemError, save_item
from ..content.schema import SECTIONS, Field, entry
from ..content.service import archive_item, delete_item, find_item, recently_changed, unarchive_item
from .auth import staff_only

bp = staff_only(Blueprint("staff_content", __name__, url_prefix="/staff/content"))
LISTED = 200


def _section(section: str) -> tuple[type, tuple[Field, ...]]:
    """The model and fields of a section, or 404."""
    if section not in SECTIONS:
        abort(404)
    return SECTIONS[section]


@bp.get("/")
def index() -> str:
    """Every section with its most recently changed items."""
    listing = {section: recently_changed(model, LISTED) for section, (model, _) in SECTIONS.items()}
    return render_template("staff/content_index.html", listing=listing)


@bp.route("/<section>/new", methods=["GET", "POST"])
def create(section: str) -> str | tuple[str, int] | Response:
    """A form for a new item of ``section``."""
    _, fields = _section(section)
    if request.method == "POST":
        return _save(section, fields, new=True)
    return _form_page(section, fields, {}, {}, new=True)


@bp.route("/<section>/<slug>", methods=["GET", "POST"])
def edit(section: str, slug: str) -> str | tuple[str, int] | Response:
    """The form for an existing item; its slug stays as it is."""
    model, fields = _section(section)
    item = find_item(model, slug)
    if item is None:
        abort(404)
    archived = item.archived_at is not None
    if request.method == "POST":
        return _save(section, fields, new=False, slug=item.slug, archived=archived)
    return _form_page(section, fields, entry(section, item), {}, new=False, archived=archived)


#: What each action on an item does: its service function, its button, and what the flash message says.
ACTIONS = {
    "archive": (archive_item, "Archive", "Archived {}: it has left the public pages and new digests."),
    "unarchive": (unarchive_item, "Publish again", "Published {} again."),
    "delete": (delete_item, "Delete for good", "Deleted {}."),
}


@bp.route("/<section>/<slug>/<any(archive, unarchive, delete):action>", methods=["GET", "POST"])
def change(section: str, slug: str, action: str) -> str | Response:
    """Ask to confirm archiving, unarchiving or deleting an item; do it when the confirmed form is posted."""
    model, _ = _section(section)
    item = find_item(model, slug)
    if item is None:
        abort(404)
    if request.method == "GET":
        return render_template("staff/content_confirm.html", section=section, item=item, action=action, ACTIONS=ACTIONS)
    if request.form.get("confirm") != action:
        abort(400)
    service, _, done = ACTIONS[action]
    if service(section, item.slug, actor=current_user.email):
        flash(done.format(item.slug))
    elif action == "delete":
        abort(404)  # deleted meanwhile, by a replayed or concurrent request
    else:
        flash(f"{item.slug} was already {'archived' if action == 'archive' else 'published'}; nothing changed.")
    return redirect(url_for(".index"), 303)


def _save(
    section: str, fields: tuple[Field, ...], *, new: bool, slug: str | None = None, archived: bool = False
) -> tuple[str, int] | Response:
    """Save the posted item; show the form again with each field's problem when it cannot be."""
    entry = _entry(request.form, fields)
    if slug is not None:
        entry["slug"] = slug
    try:
        saved, changed = save_item(section, entry, actor=current_user.email, new=new)
    except ContentItemError as exc:
        return _form_page(section, fields, entry, exc.problems, new=new, archived=archived), 400
    if not changed:
        flash("Nothing changed.")
    else:
        flash(f"Saved {saved}; " + ("it stays archived." if archived else "it will be in the next digest."))
    return redirect(url_for(".index"), 303)


def _entry(form: MultiDict[str, str], fields: tuple[Field, ...]) -> dict[str, Any]:
    """The posted fields as the importer takes them: checkboxes as booleans, whole numbers as ints."""
    entry: dict[str, Any] = {}
    for spec in fields:
        raw = form.get(spec.name, "")
        if spec.kind == "bool":
            entry[spec.name] = spec.name in form
        elif spec.kind == "int" and raw.strip().lstrip("-").isdigit() and len(raw) < 12:
            entry[spec.name] = int(raw)
        else:
            entry[spec.name] = raw.strip() if spec.kind != "text" else raw.replace("\r\n", "\n")
    return entry


def _form_page(
    section: str,
    fields: tuple[Field, ...],
    values: dict[str, Any],
    problems: dict[str, str],
    *,
    new: bool,
    archived: bool = False,
) -> str:
    """The item form with ``values`` filled in and ``problems`` next to their fields."""
    return render_template(
        "staff/content_form.html",
        section=section,
        fields=fields,
        values=values,
        problems=problems,
        new=new,
        archived=archived,
    )

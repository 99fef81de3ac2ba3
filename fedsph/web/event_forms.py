"""The members' event form and the fields of fedsph.events.service: both ways, pure."""

from __future__ import annotations

from multidict import MultiDict


def words(text: str | None) -> list[str]:
    """A list as members type it: words separated by spaces or commas."""
    return (text or "").replace(",", " ").split()


def fields_from_form(form: MultiDict) -> dict:
    """publish_event's keyword arguments from the form (publish_event validates them)."""
    lang = (form.get("lang") or "").strip()
    languages = words(form.get("languages"))
    if lang and lang not in languages:
        languages.insert(0, lang)
    place = {"name": form.get("place", "").strip(), "address": form.get("address", "").strip()}
    return {"name_map": {lang: form.get("name", "")},
            "contents": {lang: form.get("text", "")} if form.get("text", "").strip() else {},
            "kind": form.get("kind") or None, "starts_at": form.get("start", ""),
            "ends_at": form.get("end") or None, "timezone": form.get("tz", "").strip(),
            "place": place if any(place.values()) else None,
            "online_url": form.get("online", "").strip() or None, "languages": languages,
            "interpretation": words(form.get("interpretation")),
            "join_mode": form.get("join_mode") or "free",
            "related_projects": words(form.get("related"))}



def form_from_fields(fields: dict) -> MultiDict:
    """The form's values for an event's current fields (events.event_fields): the edit form
    shows the primary language's name and text, and the place's name and street address."""
    lang = next(iter(fields["name_map"]), "")
    place = fields["place"] or {}
    return MultiDict({
        "name": fields["name_map"].get(lang, ""), "lang": lang,
        "text": fields["contents"].get(lang, ""), "kind": fields["kind"] or "",
        "start": fields["starts_at"] or "", "end": fields["ends_at"] or "",
        "tz": fields["timezone"] or "", "place": place.get("name") or "",
        "address": place.get("address") or "", "online": fields["online_url"] or "",
        "languages": " ".join(fields["languages"]),
        "interpretation": " ".join(fields["interpretation"]),
        "join_mode": fields["join_mode"], "related": " ".join(fields["related_projects"])})


def edited_fields(current: dict, form: MultiDict) -> dict:
    """edit_event's fields from the edit form; what the form does not show is kept: the other
    languages' names and texts, the organisers, and the place's coordinates, locality and
    country while its name and address stay the same."""
    fields = {**current, **fields_from_form(form)}
    lang = next(iter(fields["name_map"]), "")
    if lang == next(iter(current["name_map"]), ""):
        for key in ("name_map", "contents"):
            fields[key] = {**fields[key], **{k: v for k, v in current[key].items()
                                             if k != lang}}
    old, new = current["place"] or {}, fields["place"] or {}
    if old and new and (old.get("name") or "", old.get("address") or "") == (
            new.get("name"), new.get("address")):
        fields["place"] = old
    return fields


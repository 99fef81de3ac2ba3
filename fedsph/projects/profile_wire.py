"""Project profiles on the wire: the fedsph JSON-LD context, the Group actor's profile terms,
PropertyValue attachments for Mastodon, the location as an AS2 Place, and reading all of it back
from other nodes' documents (leniently: a bad value is dropped, never fatal).
"""

from __future__ import annotations

import html
import re
from typing import Any

from babel import Locale

from fedsph.core import safe_links, vocab
from fedsph.core.sanitize import clean_html
from fedsph.core.sanitize import link as html_link
from fedsph.core.urls import URLs
from fedsph.federation.activitystreams import FEDSPH_NS, as_list, compact_term, get_id
from fedsph.models import Actor
from fedsph.projects.profile_fields import (
    COUNTS_AS_OF,
    LIST_ENUMS,
    MAX_ITEMS,
    MAX_TEXT,
    PRECISION,
    ProfileError,
    http_url,
    language_tag,
    primary_language,
    public_location,
    text_map,
    validate_field,
)

NAMESPACE = FEDSPH_NS
PREFIX = "fedsph"

# Term definitions of the extension context. Enumerations travel as slugs (plain strings) so that
# every node can label them in its own interface languages.
CONTEXT: dict[str, Any] = {
    PREFIX: NAMESPACE,
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "schema": "http://schema.org#",
    "PropertyValue": "schema:PropertyValue",
    "value": "schema:value",
    "description": "fedsph:description",
    "descriptionMap": {"@id": "fedsph:description", "@container": "@language"},
    "stage": "fedsph:stage",
    "stageHistory": {"@id": "fedsph:stageHistory", "@container": "@list"},
    "date": {"@id": "fedsph:date", "@type": "xsd:date"},
    "approach": {"@id": "fedsph:approach", "@container": "@set"},
    "tenure": {"@id": "fedsph:tenure", "@container": "@set"},
    "financing": {"@id": "fedsph:financing", "@container": "@set"},
    "households": "fedsph:households",
    "inhabitants": "fedsph:inhabitants",
    "asOf": {"@id": "fedsph:asOf", "@type": "xsd:date"},
    "homesCompleted": {"@id": "fedsph:homesCompleted", "@type": "xsd:nonNegativeInteger"},
    "homesPlanned": {"@id": "fedsph:homesPlanned", "@type": "xsd:nonNegativeInteger"},
    "startYear": {"@id": "fedsph:startYear", "@type": "xsd:gYear"},
    "completionYear": {"@id": "fedsph:completionYear", "@type": "xsd:gYear"},
    "settlementType": "fedsph:settlementType",
    "themes": {"@id": "fedsph:themes", "@container": "@set"},
    "partners": {"@id": "fedsph:partners", "@container": "@set"},
    "role": "fedsph:role",
    "country": "fedsph:country",
    "region": "fedsph:region",
    "locationPrecision": "fedsph:locationPrecision",
    "languages": {"@id": "fedsph:languages", "@container": "@set"},
    "links": {"@id": "fedsph:links", "@container": "@set"},
    "kind": "fedsph:kind",
    # Terms of project updates (fedsph/projects/notes.py), so that /ns defines every fedsph term.
    "updateKind": "fedsph:updateKind",
    "stageChange": "fedsph:stageChange",
    "license": {"@id": "fedsph:license", "@type": "@id"},
    "author": "fedsph:author",
    # Solidarity links (fedsph/links/service.py): `relationship` holds a kind slug, read as a fedsph term.
    "solidarityLinks": {"@id": "fedsph:solidarityLinks", "@container": "@set"},
    "relationship": {"@id": "https://www.w3.org/ns/activitystreams#relationship",
                     "@type": "@vocab"},
    **{slug: PREFIX + ":" + slug for slug in vocab.VOCABULARIES["solidarity_link"]},
}

PLAIN_TERMS = {
    "stage": "stage", "approach": "approach", "tenure": "tenure", "financing": "financing",
    "homes_completed": "homesCompleted", "homes_planned": "homesPlanned",
    "start_year": "startYear", "completion_year": "completionYear",
    "settlement_type": "settlementType", "themes": "themes", "country": "country",
    "region": "region", "languages": "languages",
}


# -- the wire format ----------------------------------------------------------------------------


def context_document() -> dict:
    """What {base}/ns serves."""
    return {"@context": CONTEXT}


def actor_profile_properties(actor: Actor, urls: URLs | None = None) -> dict:
    """Properties merged into a local actor's document: translations, images, profile terms."""
    properties: dict[str, Any] = {}
    profile = actor.profile or {}
    primary = primary_language(profile)
    for term, text, translations in (("name", actor.name, actor.name_map),
                                     ("summary", actor.summary, actor.summary_map)):
        if translations:
            merged = {primary: text} if text else {}
            merged.update({k: v for k, v in translations.items() if k not in merged})
            properties[term + "Map"] = merged
    if actor.icon_url:
        properties["icon"] = _image(actor.icon_url)
    if actor.header_url:
        properties["image"] = _image(actor.header_url)
    properties.update(profile_terms(profile))
    attachments = profile_attachments(profile, primary)
    if attachments:
        properties["attachment"] = attachments
    return properties


def _image(url: str) -> dict:
    image = {"type": "Image", "url": url}
    extension = url.rsplit(".", 1)[-1].lower()
    media_type = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png",
                  "webp": "image/webp", "gif": "image/gif"}.get(extension)
    if media_type:
        image["mediaType"] = media_type
    return image


def profile_terms(profile: dict) -> dict:
    """The profile in fedsph terms (and location as an AS2 Place)."""
    terms: dict[str, Any] = {}
    for key, term in PLAIN_TERMS.items():
        if profile.get(key) not in (None, [], ""):
            terms[term] = profile[key]
    if profile.get("description_map"):
        terms["descriptionMap"] = profile["description_map"]
    if profile.get("stage_history"):
        terms["stageHistory"] = profile["stage_history"]
    for key in COUNTS_AS_OF:
        if profile.get(key):
            counted = {"value": profile[key]["value"]}
            if profile[key].get("as_of"):
                counted["asOf"] = profile[key]["as_of"]
            terms[key] = counted
    if profile.get("partners"):
        terms["partners"] = [
            {k: v for k, v in (("name", p["name"]), ("href", p.get("url")), ("role", p["role"]))
             if v} for p in profile["partners"]]
    if profile.get("links"):
        terms["links"] = [
            {k: v for k, v in (("type", "Link"), ("href", link["url"]), ("kind", link["kind"]),
                               ("name", link.get("title"))) if v} for link in profile["links"]]
    if profile.get("location"):
        terms["location"] = place(profile["location"])
    if profile.get("solidarity_links"):
        terms["solidarityLinks"] = [
            {"type": "Relationship", "subject": link["subject"], "relationship": link["kind"],
             "object": link["object"]} for link in profile["solidarity_links"]]
    return terms


def place(location: dict) -> dict:
    """An AS2 Place; the radius (metres) widens with the precision, the coordinates are rounded."""
    shown = public_location(location)
    document: dict[str, Any] = {"type": "Place"}
    if shown.get("name"):
        document["name"] = shown["name"]
    document["latitude"], document["longitude"] = shown["latitude"], shown["longitude"]
    precision = shown.get("precision")
    radius = PRECISION.get(precision or "exact", (0, 0))[1]
    if radius:
        document["radius"], document["units"] = radius, "m"
    if precision:
        document["locationPrecision"] = precision
    return document


ATTACHMENT_NAMES = {
    "en": {"stage": "Stage", "approach": "Approach", "homes": "Homes", "country": "Country",
           "website": "Website", "built": "{done} built of {planned}",
           "only_built": "{done} built", "only_planned": "{planned} planned"},
    "es": {"stage": "Etapa", "approach": "Enfoque", "homes": "Viviendas", "country": "País",
           "website": "Sitio web", "built": "{done} construidas de {planned}",
           "only_built": "{done} construidas", "only_planned": "{planned} previstas"},
    "fr": {"stage": "Étape", "approach": "Approche", "homes": "Logements", "country": "Pays",
           "website": "Site web", "built": "{done} construits sur {planned}",
           "only_built": "{done} construits", "only_planned": "{planned} prévus"},
    "pt": {"stage": "Etapa", "approach": "Abordagem", "homes": "Moradias", "country": "País",
           "website": "Site", "built": "{done} construídas de {planned}",
           "only_built": "{done} construídas", "only_planned": "{planned} previstas"},
}


def profile_attachments(profile: dict, lang: str) -> list[dict]:
    """The main facts as PropertyValue (Mastodon shows them as profile fields; value is HTML)."""
    base = lang.split("-")[0]
    words = ATTACHMENT_NAMES.get(base, ATTACHMENT_NAMES["en"])
    fields: list[tuple[str, str]] = []
    if profile.get("stage"):
        fields.append((words["stage"], html.escape(vocab.label("stage", profile["stage"], base))))
    if profile.get("approach"):
        fields.append((words["approach"], html.escape(
            ", ".join(vocab.label("approach", slug, base) for slug in profile["approach"]))))
    done, planned = profile.get("homes_completed"), profile.get("homes_planned")
    if done is not None or planned is not None:
        key = "built" if done is not None and planned is not None else (
            "only_built" if done is not None else "only_planned")
        fields.append((words["homes"], words[key].format(done=done, planned=planned)))
    website = next((link["url"] for link in profile.get("links", [])
                    if link["kind"] == "website"), None)
    if website:
        shown = re.sub(r"^https?://", "", website).rstrip("/")
        fields.append((words["website"], html_link(website, shown, target="_blank",
                                                   rel="me nofollow noopener")))
    if profile.get("country"):
        fields.append((words["country"], html.escape(_country_name(profile["country"], base))))
    return [{"type": "PropertyValue", "name": name, "value": value} for name, value in fields]


def _country_name(code: str, lang: str) -> str:
    try:
        return Locale.parse(lang).territories.get(code, code)
    except (ValueError, LookupError):
        return Locale("en").territories.get(code, code)


# -- reading other nodes' documents -------------------------------------------------------------


def profile_from_document(document: dict) -> dict | None:
    """The profile of a fedsph actor document from another node; None when it has none.

    Every value is checked like a local one; a value that fails is dropped, never fatal.
    """
    if not isinstance(document, dict):
        return None
    doc = {compact_term(key): value for key, value in document.items() if isinstance(key, str)}
    raw: dict[str, Any] = {key: doc.get(term) for key, term in PLAIN_TERMS.items()}
    raw["description_map"] = doc.get("descriptionMap")
    raw["stage_history"] = doc.get("stageHistory")
    for key in COUNTS_AS_OF:
        counted = doc.get(key)
        raw[key] = ({"value": counted.get("value"), "as_of": counted.get("asOf")}
                    if isinstance(counted, dict) else None)
    raw["partners"] = [
        {"name": p.get("name"), "role": p.get("role"), "url": get_id(p.get("href"))}
        for p in as_list(doc.get("partners")) if isinstance(p, dict)]
    raw["links"] = [
        {"kind": link.get("kind") or link.get(PREFIX + ":kind"), "url": get_id(link.get("href")),
         "title": link.get("name")}
        for link in as_list(doc.get("links")) if isinstance(link, dict)]
    location = doc.get("location") if isinstance(doc.get("location"), dict) else None
    if location and (location.get("locationPrecision") or location.get(PREFIX + ":locationPrecision")
                     or any(key in doc for key in PLAIN_TERMS.values())):
        raw["location"] = {"name": location.get("name"), "latitude": location.get("latitude"),
                           "longitude": location.get("longitude"),
                           "precision": location.get("locationPrecision")
                           or location.get(PREFIX + ":locationPrecision")}
    profile = {}
    for field, value in raw.items():
        if field == "description_map" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if isinstance(v, str)}
        try:
            checked = _lenient(field, value)
        except (ProfileError, TypeError):  # whatever another server sends must not stop us
            continue
        if checked is not None:
            profile[field] = checked
    carried = solidarity_links_from(doc.get("solidarityLinks"), get_id(document.get("id")))
    if carried:
        profile["solidarity_links"] = carried
    return profile or None


def solidarity_links_from(value: Any, own_id: str | None) -> list[dict]:
    """Accepted solidarity links another node carries in a project's document, as
    {"kind", "subject", "object"} with the project itself at one end; the rest is dropped.

    A Relationship without a subject is the project's own (subject: the project).
    """
    links: list[dict] = []
    for item in as_list(value)[:MAX_ITEMS]:
        if not isinstance(item, dict) or not own_id:
            continue
        kind = item.get("relationship")
        kind = compact_term(kind) if isinstance(kind, str) else None
        subject, other = get_id(item.get("subject")) or own_id, get_id(item.get("object"))
        if (kind and re.fullmatch(r"[a-z_]{1,32}", kind)
                and all(safe_links.http_url(end) for end in (subject, other))  # links on our pages
                and own_id in (subject, other) and subject != other):
            link = {"kind": kind, "subject": subject, "object": other}
            if link not in links:
                links.append(link)
    return links


def _lenient(field: str, value: Any) -> Any:
    """Like validate_field, but a list keeps its valid items instead of failing as a whole."""
    if isinstance(value, list) and field in ("partners", "links", "stage_history", "languages",
                                             *LIST_ENUMS):
        kept = []
        for item in value[:MAX_ITEMS]:
            try:
                kept.extend(validate_field(field, [item], strict=False) or [])
            except ProfileError:
                continue
        return validate_field(field, kept, strict=False) if kept else None
    if field == "description_map" and isinstance(value, dict):
        kept = {}
        for lang, text in list(value.items())[:MAX_ITEMS]:
            try:
                kept.update(text_map("description", {lang: text}))
            except ProfileError:
                continue
        return kept or None
    return validate_field(field, value, strict=False)


def language_map(value: Any, limit: int, as_html: bool = False) -> dict[str, str] | None:
    """nameMap/summaryMap from another server: valid language keys, strings, bounded sizes."""
    if not isinstance(value, dict):
        return None
    kept = {}
    for lang, text in list(value.items())[:MAX_ITEMS]:
        try:
            tag = language_tag(lang)
        except ProfileError:
            continue
        if isinstance(text, str) and text.strip():
            kept[tag] = clean_html(text[:limit]) if as_html else text[:limit]
    return kept or None


def image_url(value: Any) -> str | None:
    """The http(s) URL of an icon or image (an Image object, a Link, a bare URL or a list)."""
    for item in as_list(value):
        url = get_id(item.get("url")) if isinstance(item, dict) and item.get("url") else get_id(item)
        try:
            return http_url("image", url)
        except ProfileError:
            continue
    return None


def remote_profile_values(document: dict) -> dict:
    """Column values of Actor kept from another server's actor document."""
    return {
        "profile": profile_from_document(document),
        "name_map": language_map(document.get("nameMap"), MAX_TEXT["name"]),
        "summary_map": language_map(document.get("summaryMap"), MAX_TEXT["summary"] * 2,
                                    as_html=True),
        "icon_url": image_url(document.get("icon")),
        "header_url": image_url(document.get("image")),
    }

"""The XSS corpus and the page checker the hostile output tests share.

The corpus is classic payloads (event handlers, script-bearing URLs with entity, whitespace and case
tricks, attribute break-outs, tags that load or redirect) plus the tags fediverse-pasture-inputs
tries as `html_bad` and `html_tags` (script, meta, form, input, button, img, audio, video, ...).
The checker parses a page with html5lib, as a browser would, and lists what could run script.
"""

from __future__ import annotations

import re

import html5lib

PAYLOADS = [
    '<script>alert(1)</script>',
    '<SCRIPT SRC=https://evil.example/x.js></SCRIPT>',
    '<img src=x onerror=alert(2)>',
    '<img src="javascript:alert(3)">',
    '<svg onload=alert(4)>',
    '<svg><script>alert(5)</script></svg>',
    '<body onload=alert(6)>',
    '<a href="javascript:alert(7)">click</a>',
    '<a href="JaVaScRiPt:alert(8)">case</a>',
    '<a href="java&#x09;script:alert(9)">tab entity</a>',
    '<a href="java\tscript:alert(10)">raw tab</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(11)">decimal</a>',
    '<a href=" javascript:alert(12)">leading space</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxMyk8L3NjcmlwdD4=">data</a>',
    '<a href="vbscript:msgbox(14)">vb</a>',
    '<a href="//evil.example/15">scheme-relative</a>',
    '<a href="https://ok.example/" onclick="alert(16)">handler on a good link</a>',
    '<a href="https://ok.example/"onmouseover="alert(17)">no space before handler</a>',
    '"><script>alert(18)</script>',
    "'><img src=x onerror=alert(19)>",
    'https://evil.example/"onmouseover="alert(20)"',
    "https://evil.example/'onmouseover='alert(21)'",
    'https://evil.example/<script>alert(22)</script>',
    '<iframe src="https://evil.example/23"></iframe>',
    '<iframe srcdoc="<script>alert(24)</script>"></iframe>',
    '<object data="javascript:alert(25)"></object>',
    '<embed src="javascript:alert(26)">',
    '<form action="javascript:alert(27)"><button>go</button></form>',
    '<button formaction="javascript:alert(28)">go</button>',
    '<input onfocus=alert(29) autofocus>',
    '<base href="https://evil.example/30/">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(31)">',
    '<style>body{background:url("javascript:alert(32)")}</style>',
    '<div style="background:url(javascript:alert(33))">styled</div>',
    '<math><mtext><table><mglyph><style><img src=x onerror=alert(34)>',
    '<details open ontoggle=alert(35)>',
    '<video><source onerror=alert(36)></video>',
    '<audio src=x onerror=alert(37)>',
    '<select onfocus=alert(38) autofocus>',
    '<textarea autofocus onfocus=alert(39)>',
    '<!--><img src=x onerror=alert(40)>-->',
    '<noscript><p title="</noscript><img src=x onerror=alert(41)>">',
    '<a href="mailto:someone@example.org">mail is fine</a>',
    '<p>plain <b>bold</b> <i>italic</i> <code>code</code></p>',
    *[f"<{tag}>{tag}</{tag}>" for tag in ("body", "html", "head", "title", "meta", "script",
                                          "article", "header", "footer", "form", "input",
                                          "select", "button")],
]

FORBIDDEN_TAGS = {"script", "iframe", "object", "embed", "base", "frame", "frameset", "applet"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "data",
                  "background", "srcdoc"}
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_NAMESPACE = re.compile(r"^\{[^}]*\}")


def _url_is_safe(value: str) -> bool:
    """Checked as a browser reads it: tabs and newlines removed, edges stripped."""
    cleaned = re.sub(r"[\t\n\r]", "", value).strip(" \x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b"
                                                   "\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16"
                                                   "\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f")
    scheme = _SCHEME.match(cleaned)
    return scheme is None or scheme.group(1).lower() in ("http", "https", "mailto")


def _srcset_urls(value: str) -> list[str]:
    return [entry.split()[0] for entry in value.split(",") if entry.strip()]


def problems(page: str) -> list[str]:
    """Everything on the page that could run script or send the visitor elsewhere unasked."""
    tree = html5lib.parse(page, treebuilder="etree", namespaceHTMLElements=False)
    parents = {child: parent for parent in tree.iter() for child in parent}
    found = []
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue  # a comment
        tag = _NAMESPACE.sub("", element.tag).lower()
        if tag in FORBIDDEN_TAGS:
            found.append(f"<{tag}>")
        if tag == "meta" and "http-equiv" in {k.lower() for k in element.attrib}:
            found.append("<meta http-equiv>")
        if tag == "style" and getattr(parents.get(element), "tag", None) != "head":
            found.append("<style> outside the page head")
        for name, value in element.attrib.items():
            name = _NAMESPACE.sub("", name).lower()
            if name.startswith("on"):
                found.append(f"<{tag} {name}>")
            if name in ("style",) and "url(" in value.lower():
                found.append(f"<{tag} style={value!r}>")
            urls = _srcset_urls(value) if name == "srcset" else (
                [value] if name in URL_ATTRIBUTES else [])
            found.extend(f"<{tag} {name}={url!r}>" for url in urls if not _url_is_safe(url))
    return found

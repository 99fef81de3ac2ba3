"""A real browser against a real `fedsph serve`: a member fills the profile and posts an update in
Spanish and English with a photo; an anonymous Spanish-speaking visitor reads it, then switches
the interface to English and the content follows.

Debian's chromium, driven by Playwright; no browser is ever downloaded (`make test` installs
chromium with apt). Screenshots go to $FEDSPH_TEST_OUTPUT/browser (default test-output/browser).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from urllib.parse import urlencode, urljoin

import pytest
import requests
from PIL import Image, ImageDraw

from tests.processes import NodeProcess

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
TIMEOUT_MS = 60_000  # the machine running the tests may be busy
GPS_IFD = 0x8825
PASSWORD = "tierra-y-techo-2024"
REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / Path(os.environ.get("FEDSPH_TEST_OUTPUT", "test-output")) / "browser"

TEXT_ES = "Terminamos el techo del bloque B con la ayuda mutua de todas las familias."
TEXT_EN = "We finished the roof of block B through the mutual aid of every family."
TITLE_ES, TITLE_EN = "Techo terminado", "Roof finished"
NAME_ES, NAME_EN = "Cooperativa Techo Común", "Common Roof Cooperative"
SUMMARY_ES = "Treinta familias construyen sus viviendas por ayuda mutua."
SUMMARY_EN = "Thirty families build their homes through mutual aid."
APP_CALLBACK = "https://app.example/callback"
ALT = "Seis personas colocan chapas sobre el techo del bloque B"


def photo_with_gps(path: Path) -> Path:
    """A JPEG that says where it was taken (EXIF GPS): the server must strip that."""
    image = Image.new("RGB", (1600, 1000), (200, 170, 120))
    draw = ImageDraw.Draw(image)
    draw.rectangle((200, 300, 1400, 900), fill=(150, 60, 40))
    draw.polygon([(150, 320), (800, 80), (1450, 320)], fill=(90, 90, 100))
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[GPS_IFD] = {1: "S", 2: (34.0, 54.0, 19.0), 3: "W", 4: (56.0, 10.0, 5.0)}
    image.save(path, "JPEG", quality=85, exif=exif)
    assert Image.open(path).getexif().get_ifd(GPS_IFD), "the test photo should carry GPS data"
    return path


@pytest.fixture
def chromium():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install "
                    "chromium); these tests never download a browser")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                             timeout=TIMEOUT_MS)
        yield browser
        browser.close()


@pytest.fixture
def server(tmp_path):
    node = NodeProcess(tmp_path / "node")
    node.cli("migrate")
    node.cli("project", "create", "coop", "--name", "Cooperativa")
    node.cli("user", "create", "ana", "--password-stdin", "--project", "coop", stdin=PASSWORD + "\n")
    node.start()
    yield node
    node.stop()


class Shots:
    """Full-page screenshots, numbered in the order the scenario takes them."""

    def __init__(self):
        OUTPUT.mkdir(parents=True, exist_ok=True)
        self.paths: list[Path] = []

    def take(self, page, name: str) -> None:
        path = OUTPUT / f"{len(self.paths) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.paths.append(path)
        print(f"screenshot: {path}")


def open_tab(page, selector: str) -> None:
    """Opens a <details> (a language or photo tab) by clicking its summary, as a person would."""
    details = page.locator("details").filter(has=page.locator(f"> summary{selector}")).first
    if details.get_attribute("open") is None:
        details.locator("> summary").click()
    assert details.get_attribute("open") is not None


class CspWatch:
    """Collects what the browser refused under the Content-Security-Policy (its console says so)."""

    def __init__(self):
        self.violations: list[str] = []

    def watch(self, page):
        page.on("console", lambda message: self.violations.append(message.text)
                if "Content Security Policy" in message.text else None)
        return page


def assert_strict_csp(response) -> None:
    policy = response.headers.get("content-security-policy", "")
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy, policy
    assert response.headers.get("x-frame-options") == "DENY"


def test_member_publishes_visitor_reads_in_their_language(server, chromium, tmp_path):
    shots = Shots()
    csp = CspWatch()
    base = server.base
    member = chromium.new_context(locale="en-US", base_url=base)
    member.set_default_timeout(TIMEOUT_MS)
    page = csp.watch(member.new_page())

    # Log in (the pages send a strict CSP; nothing on them may need more).
    assert_strict_csp(page.goto("/login?next=/actors/coop/edit"))
    page.fill("#username", "ana")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/actors/coop/edit")
    assert page.get_by_role("button", name="Log out").is_visible()
    shots.take(page, "after-login")

    # The profile: languages, translated name and summary, stage, figures, place.
    page.fill("#languages", "es, en")
    open_tab(page, '[lang="es"]')
    page.fill("#name_es", NAME_ES)
    page.fill("#summary_es", SUMMARY_ES)
    open_tab(page, '[lang="en"]')
    page.fill("#name_en", NAME_EN)
    page.fill("#summary_en", SUMMARY_EN)
    page.select_option("#stage", "building")
    page.check('input[name="approach"][value="mutual_aid_cooperative"]')
    page.fill("#households_value", "30")
    page.fill("#households_as_of", "2024-03-01")
    page.fill("#homes_completed", "12")
    page.fill("#homes_planned", "30")
    page.fill("#country", "UY")
    page.fill("#location_name", "Barrio Sur, Montevideo")
    page.fill("#location_lat", "-34.9087")
    page.fill("#location_lon", "-56.1936")
    page.select_option("#location_precision", "neighbourhood")
    shots.take(page, "profile-filled")
    page.get_by_role("button", name="Save the profile").click()
    page.wait_for_url(f"{base}/actors/coop/edit?done=saved")
    assert "saved" in page.get_by_role("status").inner_text()

    # An update in Spanish (main language) and English, with a photo that has GPS data.
    photo = photo_with_gps(tmp_path / "obra.jpg")
    page.goto("/actors/coop/compose")
    open_tab(page, '[lang="es"]')
    page.fill("#title_es", TITLE_ES)
    page.fill("#text_es", TEXT_ES)
    page.check('input[name="primary"][value="es"]')
    open_tab(page, '[lang="en"]')
    page.fill("#title_en", TITLE_EN)
    page.fill("#text_en", TEXT_EN)
    page.select_option("#kind", "progress")
    page.fill("#hashtags", "#vivienda #ayudamutua")
    page.check('input[name="themes"][value="mutual_aid"]')
    page.select_option("#visibility", "public")
    page.fill("#place_name", "Bloque B")
    page.fill("#place_lat", "-34.9087")
    page.fill("#place_lon", "-56.1936")
    page.set_input_files("#image_1", str(photo))
    page.fill("#alt_1", ALT)
    page.select_option("#license_1", "CC-BY-SA-4.0")
    page.fill("#author_1", "Ana")
    shots.take(page, "compose-filled")
    page.get_by_role("button", name="Publish").click()
    page.wait_for_url(f"{base}/objects/**")
    # The member's interface is English, so the English translation shows, with a link to the Spanish.
    assert TEXT_EN in page.locator("article .content").first.inner_text()
    assert page.locator('article a[hreflang="es"]').count() == 1
    member.close()

    # An anonymous visitor whose browser prefers Spanish.
    visitor = chromium.new_context(locale="es-ES", base_url=base,
                                   extra_http_headers={"Accept-Language": "es-ES,es;q=0.9"})
    visitor.set_default_timeout(TIMEOUT_MS)
    page = csp.watch(visitor.new_page())
    assert_strict_csp(page.goto("/actors/coop"))
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.locator("h1").inner_text().strip() == NAME_ES
    assert SUMMARY_ES in page.locator("main").inner_text()
    assert "En obra" in page.locator("dl.profile").inner_text()  # stage label in Spanish
    assert "-34.9087" not in page.content(), "a neighbourhood-precision location leaked exactly"
    article = page.locator("article").filter(has_text=TEXT_ES)
    assert article.count() == 1
    assert article.locator(".content").get_attribute("lang") == "es"
    assert TEXT_EN not in article.inner_text()
    assert TITLE_ES in article.locator("h3").inner_text()
    image = article.locator("figure img")
    image.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    shots.take(page, "visitor-es")

    assert image.get_attribute("alt") == ALT
    assert image.get_attribute("loading") == "lazy"
    srcset = image.get_attribute("srcset") or ""
    assert srcset.strip(), "the photo has no srcset"
    candidates = [entry.split()[0] for entry in srcset.split(",") if entry.strip()]
    for src in [image.get_attribute("src"), *candidates]:
        response = visitor.request.get(urljoin(page.url, src))
        assert response.ok, f"{src}: {response.status}"
        served = Image.open(io.BytesIO(response.body()))
        assert not served.getexif().get_ifd(GPS_IFD), f"{src} still has GPS data"

    # The footer's language switcher changes the interface, and the content follows.
    page.locator('footer a[hreflang="en"]').click()
    page.wait_for_url("**lang=en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text().strip() == NAME_EN
    assert SUMMARY_EN in page.locator("main").inner_text()
    article = page.locator("article").filter(has_text=TEXT_EN)
    assert article.count() == 1
    assert article.locator(".content").get_attribute("lang") == "en"
    assert TEXT_ES not in article.inner_text()
    assert TITLE_EN in article.locator("h3").inner_text()
    article.locator("figure img").scroll_into_view_if_needed()
    shots.take(page, "visitor-en")

    # The choice is remembered (cookie): the next page stays in English without ?lang=.
    page.goto("/actors/coop")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("article").filter(has_text=TEXT_EN).count() == 1
    visitor.close()

    assert "Traceback" not in server.server_log()
    assert all(path.stat().st_size > 0 for path in shots.paths)
    assert csp.violations == []


def test_oauth_consent_form_reaches_the_app_under_the_csp(server, chromium):
    """Chromium applies form-action to the redirect after a form: the consent page must allow the
    app's redirect_uri, and only it."""
    registered = requests.post(f"{server.base}/api/v1/apps", timeout=30, data={
        "client_name": "Cliente", "redirect_uris": APP_CALLBACK, "scopes": "read"}).json()
    csp = CspWatch()
    context = chromium.new_context(locale="en-US", base_url=server.base)
    context.set_default_timeout(TIMEOUT_MS)
    # The app's callback, answered by the browser itself: no request leaves the machine.
    context.route(APP_CALLBACK + "**", lambda route: route.fulfill(body="back in the app"))
    page = csp.watch(context.new_page())
    page.goto("/login")
    page.fill("#username", "ana")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{server.base}/")
    response = page.goto("/oauth/authorize?" + urlencode({
        "client_id": registered["client_id"], "redirect_uri": APP_CALLBACK,
        "response_type": "code", "scope": "read", "state": "xyz"}))
    assert_strict_csp(response)
    page.locator('button[name="decision"][value="allow"]').click()
    page.wait_for_url(APP_CALLBACK + "?**")
    assert "code=" in page.url and "state=xyz" in page.url
    assert csp.violations == []
    context.close()

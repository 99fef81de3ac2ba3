"""Settings: read once from the environment (and an optional TOML file), then passed around."""

from __future__ import annotations

import functools
import ipaddress
import os
import ssl
import tomllib
from dataclasses import dataclass, field, fields
from email.utils import getaddresses
from pathlib import Path
from urllib.parse import urlsplit

# No filesystem work at import (the project's rule): PACKAGE_DIR is computed from __file__ alone.
PACKAGE_DIR = Path(__file__).parent
PROJECT_ROOT = PACKAGE_DIR.parent


@functools.cache
def in_checkout() -> bool:
    """Running from the repository (an editable install, or `python -m fedsph` there) rather than
    from site-packages, where a stray top-level templates/ of another package must not be taken
    for ours. Decided by the checkout's own files rather than by "does fedsph/templates exist":
    a stale copy of templates/ inside the checkout's package would then silently win over the
    templates being edited, while this rule, if it ever misjudged, fails loudly (fedsph refuses
    to start and names the folder it looked in)."""
    return (PROJECT_ROOT / "setup.py").is_file() and (PROJECT_ROOT / "pyproject.toml").is_file()


def package_data_dir(name: str) -> Path:
    """Where templates/ or migrations/ is: the checkout's top-level folder when running from the
    repository (an editable install), else inside the package (a wheel or `pip install .`:
    setup.py copies them there). Never the working directory: a node runs from anywhere.
    ARCHITECTURE.md, "Package data"."""
    return (PROJECT_ROOT if in_checkout() else PACKAGE_DIR) / name


def default_templates_dir() -> Path:
    return package_data_dir("templates")


TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
TOKEN_LIFETIME_MAX_DAYS = 3650
DOCUMENT_CACHE_MAX_SECONDS = 3600
HUB_PAGE_CACHE_MAX_MB = 1024
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    base_url: str = "http://127.0.0.1:8080"
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("data")
    database_url: str = ""
    allow_private_networks: bool = False
    node_name: str = "fedsph"
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024  # one original image, before we shrink it
    delivery_concurrency: int = 32
    worker_batch: int = 64
    # Inbox items a worker processes at once (each mostly waits on other servers' answers).
    worker_concurrency: int = 32
    # How long a claimed queue row stays a worker's before another may take it (a crashed one's).
    worker_lease_seconds: float = 300.0
    # The inbox (fedsph/federation/ingest.py, keycache.py, blocks.py): how long a batch waits for
    # neighbours, its largest size, and how stale another process's changes may be seen here.
    ingest_wait_ms: float = 2.0
    ingest_batch: int = 256
    key_cache_seconds: float = 60.0
    block_refresh_seconds: float = 5.0
    http_timeout: float = 15.0
    retry_base_seconds: float = 30.0
    templates_dir: Path = field(default_factory=default_templates_dir)
    hub: bool = False  # hub mode (fedsph/hub): `serve` and `bootstrap` make sure a hub exists
    hub_name: str = "Hub"
    token_lifetime_days: int = 90  # client API access tokens expire; apps then log in again
    # Limits on what strangers can make this node store (issue 10, "Limits").
    inbox_retention_days: int = 7  # processed inbox rows and finished deliveries are kept this long
    relay_allow: str = ""  # comma-separated domains whose relay subscriptions are approved at once
    relay_max_subscribers: int = 100  # approved relay subscribers; more: Reject
    trusted_proxies: str = ""  # IPs/CIDRs whose X-Forwarded-For we believe (fedsph/web/client_address.py)
    access_log: bool = True  # one line per request from `fedsph serve` (fedsph/web/access_log.py)
    log_level: str = "INFO"
    # How long a process may serve an actor document or WebFinger answer after another process
    # changed it (fedsph/web/documents.py; ARCHITECTURE.md, "Caches and several processes").
    document_cache_seconds: float = 30.0
    # Rendered hub directory pages kept per process (fedsph/web/hub_pages.py); 0: none (the
    # directory benchmark measures pages rendered every time so).
    hub_page_cache_mb: int = 8
    # A PEM file of certificate authorities to trust for outgoing HTTPS, in addition to the
    # system's (a private hub or test network with its own CA). Verification is never turned off.
    ca_bundle: str = ""
    # --- E-mail (issue 14, item 3; fedsph/mail). No host: no mail at all, everything else works.
    smtp_host: str = ""
    smtp_port: int = 0  # 0: the usual port of smtp_tls (587 starttls, 465 tls, 25 none)
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)  # never in a printed Settings
    smtp_from: str = ""  # the From address, e.g. "Red Coop <noreply@coop.example>"
    # starttls (the default), tls (TLS from the first byte) or none; never lowered on its own.
    smtp_tls: str = "starttls"
    # -- operating (issue 14, helper O): /metrics is served only to these addresses (CIDRs, the
    # client as fedsph/web/client_address.py finds it) or with this bearer token; neither: off.
    metrics_allow: str = ""
    metrics_token: str = ""

    @property
    def metrics_enabled(self) -> bool:
        return bool(self.metrics_allow.strip() or self.metrics_token)

    @property
    def domain(self) -> str:
        """Host as it appears in handles: includes the port when it is not the default."""
        return urlsplit(self.base_url).netloc

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'fedsph.sqlite3').resolve()}"

    @property
    def relay_allowed_domains(self) -> frozenset[str]:
        return frozenset(d.strip().lower() for d in self.relay_allow.split(",") if d.strip())


ENV_NAMES = {
    "base_url": "FEDSPH_BASE_URL",
    "host": "FEDSPH_HOST",
    "port": "FEDSPH_PORT",
    "data_dir": "FEDSPH_DATA_DIR",
    "database_url": "FEDSPH_DATABASE_URL",
    "allow_private_networks": "FEDSPH_ALLOW_PRIVATE_NETWORKS",
    "node_name": "FEDSPH_NODE_NAME",
    "max_body_bytes": "FEDSPH_MAX_BODY_BYTES",
    "max_upload_bytes": "FEDSPH_MAX_UPLOAD_BYTES",
    "delivery_concurrency": "FEDSPH_DELIVERY_CONCURRENCY",
    "worker_batch": "FEDSPH_WORKER_BATCH",
    "worker_concurrency": "FEDSPH_WORKER_CONCURRENCY",
    "worker_lease_seconds": "FEDSPH_WORKER_LEASE_SECONDS",
    "ingest_wait_ms": "FEDSPH_INGEST_WAIT_MS",
    "ingest_batch": "FEDSPH_INGEST_BATCH",
    "key_cache_seconds": "FEDSPH_KEY_CACHE_SECONDS",
    "block_refresh_seconds": "FEDSPH_BLOCK_REFRESH_SECONDS",
    "http_timeout": "FEDSPH_HTTP_TIMEOUT",
    "retry_base_seconds": "FEDSPH_RETRY_BASE_SECONDS",
    "hub": "FEDSPH_HUB",
    "hub_name": "FEDSPH_HUB_NAME",
    "token_lifetime_days": "FEDSPH_TOKEN_LIFETIME_DAYS",
    "inbox_retention_days": "FEDSPH_INBOX_RETENTION_DAYS",
    "relay_allow": "FEDSPH_RELAY_ALLOW",
    "relay_max_subscribers": "FEDSPH_RELAY_MAX_SUBSCRIBERS",
    "trusted_proxies": "FEDSPH_TRUSTED_PROXIES",
    "access_log": "FEDSPH_ACCESS_LOG",
    "log_level": "FEDSPH_LOG_LEVEL",
    "document_cache_seconds": "FEDSPH_DOCUMENT_CACHE_SECONDS",
    "hub_page_cache_mb": "FEDSPH_HUB_PAGE_CACHE_MB",
    "ca_bundle": "FEDSPH_CA_BUNDLE",
    # E-mail (fedsph/mail)
    "smtp_host": "FEDSPH_SMTP_HOST",
    "smtp_port": "FEDSPH_SMTP_PORT",
    "smtp_username": "FEDSPH_SMTP_USERNAME",
    "smtp_password": "FEDSPH_SMTP_PASSWORD",
    "smtp_from": "FEDSPH_SMTP_FROM",
    "smtp_tls": "FEDSPH_SMTP_TLS",
    # operating (issue 14)
    "metrics_allow": "FEDSPH_METRICS_ALLOW",
    "metrics_token": "FEDSPH_METRICS_TOKEN",
}


def _convert(name: str, kind: type, raw: object) -> object:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ConfigError(f"{ENV_NAMES.get(name, name)}: expected true/false, got {raw!r}")
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{ENV_NAMES.get(name, name)}: expected a number, got {raw!r}") from None
    if kind is Path:
        return Path(str(raw))
    return str(raw)


def load_settings(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Build Settings from a TOML file (FEDSPH_CONFIG), then env vars, then keyword overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    config_file = env.get("FEDSPH_CONFIG")
    if config_file:
        try:
            values.update(tomllib.loads(Path(config_file).read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"FEDSPH_CONFIG={config_file}: {exc}") from None
    for name, env_name in ENV_NAMES.items():
        if env_name in env:
            values[name] = env[env_name]
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "base_url" not in values and "port" in values:
        # Someone who only moves the port expects the node to name itself on that port.
        values["base_url"] = f"http://127.0.0.1:{values['port']}"
    types = {f.name: f.type for f in fields(Settings)}
    kinds = {"bool": bool, "int": int, "float": float, "Path": Path, "str": str}
    clean: dict[str, object] = {}
    for name, raw in values.items():
        if name not in types:
            raise ConfigError(f"unknown setting {name!r}")
        clean[name] = _convert(name, kinds[str(types[name])], raw)
    settings = Settings(**clean)
    return _validated(settings)


def _validated(settings: Settings) -> Settings:
    parts = urlsplit(settings.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"FEDSPH_BASE_URL must be an http(s) URL, got {settings.base_url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("FEDSPH_BASE_URL must not have a path: fedsph serves from the root")
    if not 0 < settings.port < 65536:
        raise ConfigError(f"FEDSPH_PORT must be 1-65535, got {settings.port}")
    if not 0 < settings.token_lifetime_days <= TOKEN_LIFETIME_MAX_DAYS:
        raise ConfigError(f"FEDSPH_TOKEN_LIFETIME_DAYS must be 1-{TOKEN_LIFETIME_MAX_DAYS} "
                          f"(tokens always expire), got {settings.token_lifetime_days}")
    if settings.inbox_retention_days < 1 or settings.relay_max_subscribers < 0:
        raise ConfigError("FEDSPH_INBOX_RETENTION_DAYS must be at least 1 and "
                          "FEDSPH_RELAY_MAX_SUBSCRIBERS not negative")
    if settings.worker_batch < 1 or settings.worker_concurrency < 1 or settings.worker_lease_seconds <= 0:
        raise ConfigError("FEDSPH_WORKER_BATCH and FEDSPH_WORKER_CONCURRENCY must be at least 1 "
                          "and FEDSPH_WORKER_LEASE_SECONDS more than 0")
    if not (0 <= settings.ingest_wait_ms <= 1000 and 1 <= settings.ingest_batch <= 5000
            and 0 <= settings.key_cache_seconds <= 3600
            and 0 <= settings.block_refresh_seconds <= 300):
        raise ConfigError("FEDSPH_INGEST_WAIT_MS must be 0-1000, FEDSPH_INGEST_BATCH 1-5000, "
                          "FEDSPH_KEY_CACHE_SECONDS 0-3600 and FEDSPH_BLOCK_REFRESH_SECONDS 0-300")
    try:
        proxy_networks(settings.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(f"FEDSPH_TRUSTED_PROXIES: {exc}") from None
    if not 0 <= settings.document_cache_seconds <= DOCUMENT_CACHE_MAX_SECONDS:
        raise ConfigError(f"FEDSPH_DOCUMENT_CACHE_SECONDS must be 0-{DOCUMENT_CACHE_MAX_SECONDS} "
                          f"(0: no cache), got {settings.document_cache_seconds}")
    if not 0 <= settings.hub_page_cache_mb <= HUB_PAGE_CACHE_MAX_MB:
        raise ConfigError(f"FEDSPH_HUB_PAGE_CACHE_MB must be 0-{HUB_PAGE_CACHE_MAX_MB} "
                          f"(0: no cache), got {settings.hub_page_cache_mb}")
    if settings.ca_bundle:
        try:
            outgoing_tls_context(settings.ca_bundle)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ConfigError(f"FEDSPH_CA_BUNDLE={settings.ca_bundle}: not a readable file of PEM "
                              f"certificates ({exc})") from None
    _check_metrics(settings)
    level = settings.log_level.strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"FEDSPH_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, "
                          f"got {settings.log_level!r}")
    _check_smtp(settings)
    return Settings(**{**settings.__dict__, "base_url": settings.base_url.rstrip("/"),
                       "log_level": level, "smtp_tls": settings.smtp_tls.strip().lower()})


# --- E-mail settings (fedsph/mail) ---------------------------------------------------------------

SMTP_TLS_MODES = {"starttls": 587, "tls": 465, "none": 25}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def mail_enabled(settings: Settings) -> bool:
    """Whether this node sends mail at all (FEDSPH_SMTP_HOST set)."""
    return bool(settings.smtp_host)


def smtp_port(settings: Settings) -> int:
    """FEDSPH_SMTP_PORT, or the usual port of the TLS mode."""
    return settings.smtp_port or SMTP_TLS_MODES[settings.smtp_tls.strip().lower()]


def _check_smtp(settings: Settings) -> None:
    """Mail settings that cannot work are refused at start, not at the first mail."""
    tls = settings.smtp_tls.strip().lower()
    if tls not in SMTP_TLS_MODES:
        raise ConfigError(f"FEDSPH_SMTP_TLS must be starttls, tls or none, got {settings.smtp_tls!r}")
    if not settings.smtp_host:
        others = [ENV_NAMES[name] for name in ("smtp_username", "smtp_password", "smtp_from")
                  if getattr(settings, name)]
        if others:
            raise ConfigError(f"{', '.join(others)} set but FEDSPH_SMTP_HOST is empty: "
                              "set the mail server's name too, or remove them")
        return
    host = settings.smtp_host.strip()
    if not host or any(ch.isspace() or ord(ch) < 32 for ch in settings.smtp_host):
        raise ConfigError(f"FEDSPH_SMTP_HOST must be a host name, got {settings.smtp_host!r}")
    if not 0 <= settings.smtp_port < 65536:
        raise ConfigError(f"FEDSPH_SMTP_PORT must be 1-65535, got {settings.smtp_port}")
    if not settings.smtp_from:
        raise ConfigError("FEDSPH_SMTP_FROM is needed with FEDSPH_SMTP_HOST: the address mail "
                          "is sent from, e.g. noreply@example.org")
    if bool(settings.smtp_username) != bool(settings.smtp_password):
        raise ConfigError("FEDSPH_SMTP_USERNAME and FEDSPH_SMTP_PASSWORD go together: set both "
                          "or neither")
    if tls == "none" and settings.smtp_password and host.lower() not in LOOPBACK_NAMES:
        raise ConfigError("FEDSPH_SMTP_TLS=none would send FEDSPH_SMTP_PASSWORD unencrypted: "
                          "use starttls or tls (none only for a server on this machine)")
    if one_address(settings.smtp_from) is None:
        raise ConfigError(f"FEDSPH_SMTP_FROM must be one e-mail address (optionally with a "
                          f"name: Coop <noreply@coop.example>), got {settings.smtp_from!r}")


def one_address(text: str) -> str | None:
    """The one address in `text` (bare, or `Name <address>`), or None: the one check of the
    From setting and of every address a mail goes to (fedsph/mail/message.py). Refused: control
    characters (a line break would split a header) and forms a mail server might read two
    addresses in (a comma, a group)."""
    if any(not ch.isprintable() for ch in text):
        return None
    found = getaddresses([text])
    if len(found) != 1 or "@" not in found[0][1] or any(c in found[0][1] for c in " ,;<>\""):
        return None
    return found[0][1]


METRICS_TOKEN_MIN = 16


def _check_metrics(settings: Settings) -> None:
    """FEDSPH_METRICS_ALLOW must parse; a token short or with spaces is a guessable or
    mis-pasted one (it is sent as `Authorization: Bearer TOKEN`)."""
    try:
        proxy_networks(settings.metrics_allow)
    except ValueError as exc:
        raise ConfigError(f"FEDSPH_METRICS_ALLOW: {exc}") from None
    token = settings.metrics_token
    if token and (len(token) < METRICS_TOKEN_MIN or not token.isascii()
                  or any(ch.isspace() or not ch.isprintable() for ch in token)):
        raise ConfigError(f"FEDSPH_METRICS_TOKEN must be at least {METRICS_TOKEN_MIN} printable "
                          "characters without spaces (e.g. `openssl rand -hex 32`)")


@functools.lru_cache(maxsize=4)
def outgoing_tls_context(ca_bundle: str) -> ssl.SSLContext | None:
    """The TLS context of outgoing requests: the system's trust store plus FEDSPH_CA_BUNDLE's
    authorities, with certificate and host name checks on; None (aiohttp's default) without one.
    OSError (ssl.SSLError among them) or ValueError if the file cannot be read as certificates."""
    if not ca_bundle:
        return None
    context = ssl.create_default_context()  # CERT_REQUIRED and check_hostname, as aiohttp's
    context.load_verify_locations(cafile=ca_bundle)
    context.set_alpn_protocols(["http/1.1"])  # what aiohttp offers with its own context
    return context


@functools.lru_cache(maxsize=8)
def proxy_networks(text: str) -> tuple[IPNetwork, ...]:
    """The networks of FEDSPH_TRUSTED_PROXIES ("127.0.0.1, 10.0.0.0/8"); ValueError if one is bad."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False)
                 for item in text.split(",") if item.strip())

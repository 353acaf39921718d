"""How every process reaches Redis: the one URL plus the TLS options every client must be given.

A `rediss://` URL carries TLS options of its own in its query (`?ssl_cert_reqs=none`,
`ssl_ca_certs=/path`); what it leaves out comes from REDIS_SSL_CERT_REQS / REDIS_SSL_CA_CERTS, so
Heroku's bare `rediss://:pw@host:port` with a self-signed certificate works once
`REDIS_SSL_CERT_REQS=none` is set. The same answer goes to every client of every process:

    redis_connection(settings)  (URL, keywords) for redis-py's sync and asyncio `from_url`
                                (clients, pools, pub/sub, the job watcher, the stream relay)
    celery_redis(settings)      (URL, ssl dict or None) for Celery's broker and result backend
"""

from __future__ import annotations

import ssl
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# The spellings redis-py and Celery accept in a URL, folded to the one redis-py takes as a keyword.
CERT_REQS = {
    "required": "required",
    "cert_required": "required",
    "optional": "optional",
    "cert_optional": "optional",
    "none": "none",
    "cert_none": "none",
}
SSL_CONSTANTS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}


def uses_tls(url: str) -> bool:
    return urlsplit(url).scheme == "rediss"


def url_tls_options(url: str) -> dict[str, str]:
    """The `ssl_*` options written in the URL's query, `ssl_cert_reqs` folded to required/optional/none.

    Raises ValueError (without the URL: it may carry a password) for an unknown `ssl_cert_reqs`.
    """
    options = {k: v for k, v in parse_qsl(urlsplit(url).query) if k.startswith("ssl_")}
    if "ssl_cert_reqs" in options:
        folded = CERT_REQS.get(options["ssl_cert_reqs"].lower())
        if folded is None:
            raise ValueError(
                f"REDIS_URL's ssl_cert_reqs must be required, optional or none; got {options['ssl_cert_reqs']!r}"
            )
        options["ssl_cert_reqs"] = folded
    return options


def tls_options(settings) -> dict[str, str]:
    """The TLS options in force for settings.redis_url: the URL's own over the settings; {} without TLS."""
    if not uses_tls(settings.redis_url):
        return {}
    options = {"ssl_cert_reqs": settings.redis_ssl_cert_reqs}
    if settings.redis_ssl_ca_certs:
        options["ssl_ca_certs"] = settings.redis_ssl_ca_certs
    options.update(url_tls_options(settings.redis_url))
    return options


def redis_connection(settings) -> tuple[str, dict[str, str]]:
    """(URL, keyword arguments) for redis-py's sync and asyncio `from_url`:

        url, tls = redis_connection(settings)
        redis.Redis.from_url(url, **tls, health_check_interval=30)

    The URL's own `ssl_*` options move into the keywords, folded to the spelling redis-py takes
    (it would refuse Celery's `CERT_NONE` from a URL).
    """
    options = tls_options(settings)
    if not options:
        return settings.redis_url, {}
    return _without_tls_query(settings.redis_url), options


def celery_redis(settings) -> tuple[str, dict | None]:
    """Celery's broker/backend URL and its `broker_use_ssl` / `redis_backend_use_ssl` dict (None
    without TLS: kombu would make even a redis:// connection TLS when given one).

    `ssl_cert_reqs` becomes the ssl module's constant, which both kombu and Celery's backend take; the
    URL's own options are in the dict (kombu would otherwise let them replace it wholesale, dropping a
    CA file that came from the settings).
    """
    url, options = redis_connection(settings)
    if not options:
        return url, None
    return url, {**options, "ssl_cert_reqs": SSL_CONSTANTS[options["ssl_cert_reqs"]]}


def _without_tls_query(url: str) -> str:
    parts = urlsplit(url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if not k.startswith("ssl_")])
    return urlunsplit(parts._replace(query=query))

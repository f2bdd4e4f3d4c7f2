"""Who may show the tool in a frame: the origins the apps name, for the Content-Security-Policy's frame-ancestors
(config.csp). config/ knows no app, so each app that has such origins registers a provider in its
AppConfig.ready() (lti: its active platform registrations, lti.framing)."""

PROVIDERS = []  # (origins, cached) pairs, in the order of registration


def register_frame_ancestors(origins, cached=None):
    """Add a provider: ``origins()`` returns the origins (it may read the database: sync code only); ``cached()``,
    if given, returns what the provider keeps in this process without any I/O, or None when it must read."""
    if (origins, cached) not in PROVIDERS:
        PROVIDERS.append((origins, cached))


def platform_origins():
    """Every provider's origins, in order and without repeats (may read the database)."""
    return list(dict.fromkeys(origin for origins, _cached in PROVIDERS for origin in origins()))


def cached_platform_origins():
    """The same without I/O, or None when a provider must read first (then platform_origins(), on a thread)."""
    found = []
    for _origins, cached in PROVIDERS:
        kept = cached() if cached else None
        if kept is None:
            return None
        found.extend(kept)
    return list(dict.fromkeys(found))

"""The demo course built from the texts the repo ships (placeholder until courses lands)."""


def ensure_demo_course():
    return "demo"

"""The built-in test platform registration (placeholder until lti lands)."""


def ensure_test_platform():
    return "test-platform"

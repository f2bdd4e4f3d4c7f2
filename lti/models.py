"""Models of the lti app."""

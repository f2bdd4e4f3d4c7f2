"""Django's PostgreSQL backend, its pooled connections checked without a round trip while nothing came (base.py)."""

"""Imported by Python at start-up in every process the tests start (this folder leads their PYTHONPATH): installs
the test network guard (netguard_hook.py) before any application code runs."""

import netguard_hook

netguard_hook.install_from_env()

"""Time the README's run command: seconds until /health/ready reports every component healthy, and shutdown.

Usage: .venv/bin/python bench/bench_stack_startup.py [--port 8000]
(Run it with no other embedded stack running; it starts ./deploy/run.sh itself and stops it with Ctrl-C.)
"""

import argparse
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    started = time.monotonic()
    process = subprocess.Popen([str(ROOT / "deploy" / "run.sh"), "--port", str(args.port)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{args.port}/health/ready"
    body = None
    try:
        while time.monotonic() - started < args.timeout:
            if process.poll() is not None:
                raise SystemExit(f"run command exited with {process.returncode} before becoming ready")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    body = json.load(response)
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        ready = time.monotonic() - started
        print(f"ready after {ready:.1f} s")
        print(json.dumps(body, indent=1))
    finally:
        stop = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        print(f"clean shutdown after Ctrl-C: {time.monotonic() - stop:.1f} s (exit code {process.returncode})")


if __name__ == "__main__":
    main()

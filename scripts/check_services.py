"""Say clearly whether the PostgreSQL and Redis that `make test` needs are reachable."""
import os
import socket
import sys
from urllib.parse import urlsplit

HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
}


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=3):
            return True
    except OSError:
        return False


def main() -> int:
    checks = [
        ("PostgreSQL", os.environ["DATABASE_URL"], 5432),
        ("Redis", os.environ["CELERY_BROKER_URL"], 6379),
    ]
    failed = False
    for name, url, port in checks:
        if reachable(url, port):
            print(f"ok: {name} at {urlsplit(url).hostname}:{urlsplit(url).port or port}")
        else:
            failed = True
            print(f"NOT REACHABLE: {name} at {url}\n  start it with: {HINTS[name]}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

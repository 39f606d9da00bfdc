"""Read deployment settings from the environment; fail loudly on a bad value."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_MISSING = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env(name: str, default=_MISSING, cast=str):
    """Return os.environ[name] cast to `cast` (str, int, bool or list)."""
    raw = os.environ.get(name)
    if raw is None:
        if default is _MISSING:
            raise ImproperlyConfigured(f"Set the environment variable {name}.")
        return default
    try:
        if cast is bool:
            value = raw.strip().lower()
            if value in _TRUE:
                return True
            if value in _FALSE:
                return False
            raise ValueError("expected one of 1/0, true/false, yes/no, on/off")
        if cast is list:
            return [item.strip() for item in raw.split(",") if item.strip()]
        return cast(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a valid {cast.__name__}: {exc}") from exc


def database_from_url(url: str, base_dir: Path) -> dict:
    """postgres://user:pass@host:port/name or sqlite:///relative/or//absolute/path."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise ImproperlyConfigured(f"DATABASE_URL {url!r} names no SQLite file.")
        name = Path(path) if Path(path).is_absolute() else base_dir / path
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(name),
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20,
                        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
        }
    if parts.scheme in ("postgres", "postgresql", "pgsql"):
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured(f"DATABASE_URL {url!r} names no database.")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {parts.scheme!r} is not supported; use postgres:// or sqlite:///"
    )


def embedded_secret_key(var_dir: Path) -> str:
    """The embedded default keeps a random key in var/ so sessions survive restarts."""
    import secrets

    path = var_dir / "secret_key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def parse_sla(raw: str) -> dict[str, int]:
    """'critical=7,high=30' -> {'critical': 7, 'high': 30}; unknown severities fail loudly."""
    allowed = {"critical", "high", "medium", "low", "info"}
    result = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, _, days = part.partition("=")
        if name.strip() not in allowed or not days.strip().isdecimal():
            raise ImproperlyConfigured(f"RAMPART_SLA_DAYS: {part!r} should look like 'high=30'.")
        result[name.strip()] = int(days)
    return result


def env_secret(name: str, min_length: int = 32) -> str:
    """An optional key: empty when unset, refused when set but shorter than min_length characters."""
    value = env(name, "")
    if value and len(value) < min_length:
        raise ImproperlyConfigured(f"{name} is {len(value)} characters long; use at least {min_length} random ones.")
    return value


def env_file(name: str) -> Path | None:
    """An optional absolute file path; None when unset or empty."""
    value = env(name, "")
    if value and not Path(value).is_absolute():
        raise ImproperlyConfigured(f"{name}={value!r} must be an absolute path.")
    return Path(value) if value else None


def env_positive(name: str, default: int) -> int:
    value = env(name, default, cast=int)
    if value < 1:
        raise ImproperlyConfigured(f"{name}={value} must be at least 1.")
    return value

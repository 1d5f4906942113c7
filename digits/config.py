"""Server settings: defaults, then a TOML config file, then DIGITS_* environment variables, then the command line."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class SettingsError(ValueError):
    """A setting has a value the server cannot use; the message names the setting."""


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 5000
    jobs_dir: str = "jobs"
    # None: find GPUs through NVML; []: use none; [0, 1]: exactly these indices.
    gpus: list[int] | None = None
    url_prefix: str = ""
    config: str | None = None
    debug: bool = False
    # How many CPU-bound tasks (dataset builds, CPU training) run at once.
    cpu_slots: int = 2
    # Seconds an aborted task gets to write its snapshot before SIGKILL.
    abort_grace_s: float = 10.0
    max_content_length: int = 512 * 1024 * 1024
    log_level: str = "INFO"
    # Flask-SocketIO async mode; the devserver uses gevent, in-process tests use threading.
    async_mode: str = "gevent"
    # Server folders images may be read from; none set: any readable path, on a loopback-only server.
    data_roots: list[str] = field(default_factory=list)
    # Largest total size a zip upload may unpack to.
    max_unpacked_bytes: int = 4 * 1024 * 1024 * 1024
    # "none": DIGITS' username-only sign-in, for one person on a loopback-only server; "password": accounts.
    auth: str = "none"
    # How many reverse proxies sit in front of the server (trusted X-Forwarded-* headers); 0: none.
    proxy_fix: int = 0
    # Inference workers kept warm (one loaded model each).
    inference_workers: int = 2
    # Classify-by-URL may fetch from private, loopback and link-local addresses (off: only public hosts).
    allow_private_urls: bool = False
    # Host names (and addresses) the server answers to, besides loopback names on a loopback server and this
    # machine's own names and addresses on a server that listens beyond loopback; anything else is a 400.
    allowed_hosts: list[str] = field(default_factory=list)
    # Sign-in throttling: after this many wrong passwords for one name, or from one address, within the window,
    # sign-in answers 429 with Retry-After until the window has passed.
    login_max_failures: int = 5
    login_window_s: float = 300.0
    # A signed-in browser session ends after this many hours, whatever it does (0: when the browser closes).
    session_hours: float = 24.0 * 7
    # On a --auth password server, a member's Python runs only inside the Landlock sandbox (digits/sandbox.py); a
    # kernel without Landlock refuses such code unless this is set (the code then reads what the server can).
    allow_unisolated_code: bool = False
    # Quotas: what one model may cost.
    max_model_params: int = 250_000_000
    max_snapshot_bytes: int = 20 * 1024**3
    min_snapshot_interval: float = 0.01
    max_epochs: int = 10_000
    # Decoded size limit of one image, in pixels (a decompression bomb is refused before it is decoded).
    max_image_pixels: int = 64_000_000
    # Largest ratio of unpacked to packed bytes a zip upload may have (images hardly compress; bombs do).
    max_zip_ratio: float = 100.0
    # An external run (POST /runs/json) whose script makes no call (log, heartbeat) for this many seconds is Error.
    run_heartbeat_s: float = 60.0

    @property
    def jobs_path(self) -> str:
        return os.path.abspath(self.jobs_dir)


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def is_loopback(host: str) -> bool:
    """Whether an address or name to listen on is this machine only (127/8, ::1, localhost)."""
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_gpus(value: Any) -> list[int] | None:
    """'0,1' -> [0, 1]; 'none' or '' -> []; 'auto' -> None (discover)."""
    if value is None or isinstance(value, list):
        return value
    text = str(value).strip().lower()
    if text == "auto":
        return None
    if text in ("", "none"):
        return []
    try:
        gpus = [int(part) for part in text.split(",")]
    except ValueError:
        raise SettingsError(f"gpus: expected a list like 0,1 or 'none', got {value!r}") from None
    if any(g < 0 for g in gpus) or len(set(gpus)) != len(gpus):
        raise SettingsError(f"gpus: indices must be distinct and >= 0, got {value!r}")
    return gpus


def _convert(name: str, value: Any) -> Any:
    if name == "gpus":
        return parse_gpus(value)
    kind = FIELDS[name].type
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "list[str]":
            if isinstance(value, list):
                return [str(v) for v in value]
            # Folders are separated as in PATH; host names (which may be IPv6 addresses) by commas.
            separator = "," if name == "allowed_hosts" else os.pathsep
            return [v.strip() for v in str(value).split(separator) if v.strip()]
        return None if value is None else str(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name}: cannot use {value!r} (expected {kind})") from None


def _normalize(settings: Settings) -> Settings:
    prefix = settings.url_prefix.strip()
    if prefix and prefix != "/":
        settings.url_prefix = "/" + prefix.strip("/")
    else:
        settings.url_prefix = ""
    if not 0 < settings.port < 65536:
        raise SettingsError(f"port: {settings.port} is not a TCP port")
    if settings.cpu_slots < 1:
        raise SettingsError("cpu_slots: must be at least 1")
    if settings.auth not in ("none", "password"):
        raise SettingsError(f"auth: expected none or password, got {settings.auth!r}")
    if settings.auth == "none" and not is_loopback(settings.host):
        raise SettingsError(
            f"auth: --auth none lets anyone who can reach {settings.host} act as any user; a server that listens "
            "beyond loopback needs --auth password (create accounts with python -m digits.users)"
        )
    return settings


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="digits-devserver", description="Run the DIGITS server.")
    p.add_argument("-p", "--port", help="port to listen on (default 5000; DIGITS_PORT)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1; DIGITS_HOST)")
    p.add_argument("--jobs-dir", dest="jobs_dir", help="where jobs are stored (default ./jobs; DIGITS_JOBS_DIR)")
    p.add_argument("--gpus", help="GPU indices to use, like 0,1, or 'none' (default: all found; DIGITS_GPUS)")
    p.add_argument("--url-prefix", dest="url_prefix", help="serve under this path, like /digits (DIGITS_URL_PREFIX)")
    p.add_argument("--config", help="a TOML file of settings (DIGITS_CONFIG)")
    p.add_argument("--debug", action="store_const", const=True, help="verbose logging (DIGITS_DEBUG)")
    p.add_argument(
        "--auth",
        choices=["none", "password"],
        help="none: username-only sign-in, loopback only (default); password: accounts (DIGITS_AUTH)",
    )
    p.add_argument(
        "--data-root",
        dest="data_roots",
        action="append",
        metavar="DIR",
        help="a server folder images may be read from; repeatable (DIGITS_DATA_ROOTS, ':'-separated)",
    )
    p.add_argument(
        "--allowed-host",
        dest="allowed_hosts",
        action="append",
        metavar="NAME",
        help="a host name the server answers to, e.g. digits.example.com; repeatable (DIGITS_ALLOWED_HOSTS, "
        "comma-separated)",
    )
    return p


def load_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from defaults < config file < environment < command line."""
    environ = os.environ if environ is None else environ
    args = vars(build_parser().parse_args(argv))
    env = {name: environ[f"DIGITS_{name.upper()}"] for name in FIELDS if f"DIGITS_{name.upper()}" in environ}
    values: dict[str, Any] = {}
    config_path = args.get("config") or env.get("config")
    if config_path:
        try:
            with open(config_path, "rb") as fh:
                from_file = tomllib.load(fh)
        except OSError as e:
            raise SettingsError(f"config: cannot read {config_path}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise SettingsError(f"config: {config_path}: {e}") from None
        unknown = sorted(set(from_file) - set(FIELDS))
        if unknown:
            raise SettingsError(f"config: {config_path}: unknown settings {', '.join(unknown)}")
        values.update(from_file)
    values.update(env)
    values.update({k: v for k, v in args.items() if v is not None})
    return settings_from(values)


def settings_from(values: Mapping[str, Any]) -> Settings:
    """Settings from a plain mapping (config file, tests), converting and checking each value."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise SettingsError(f"unknown settings: {', '.join(unknown)}")
    return _normalize(Settings(**{k: _convert(k, v) for k, v in values.items()}))

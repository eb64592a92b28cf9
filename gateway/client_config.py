"""The client config `clearline run` writes and `clearctl` / `clearline demo` read (as kubectl's).

A JSON file, mode 0600 because it holds API keys: the gateway address, whether it speaks TLS,
the local admin key, and the demo accounts' keys. Found by, in order: an explicit path,
`$CLEARLINE_CONFIG`, `./.clearline/client.json`, `~/.clearline/client.json`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

FILE_NAME = "client.json"


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    gateway: str  # host:port
    api_key: str  # the local admin's key
    tls_ca: str = ""  # a CA bundle path when the gateway speaks TLS
    metrics_url: str = ""
    keys: dict[str, str] = field(default_factory=dict)  # demo key name -> API key
    accounts: dict[str, int] = field(default_factory=dict)  # demo key name -> account id


class ConfigNotFound(FileNotFoundError):
    pass


def default_paths() -> list[Path]:
    paths = []
    if os.environ.get("CLEARLINE_CONFIG"):
        paths.append(Path(os.environ["CLEARLINE_CONFIG"]))
    paths += [Path.cwd() / ".clearline" / FILE_NAME, Path.home() / ".clearline" / FILE_NAME]
    return paths


def load(path: Path | None = None) -> ClientConfig:
    """Read the first config that exists; ConfigNotFound says where it looked."""
    candidates = [path] if path else default_paths()
    for candidate in candidates:
        if candidate.exists():
            data = json.loads(candidate.read_text())
            if data.get("tls_ca"):  # a relative CA path is relative to the config file
                data["tls_ca"] = str(candidate.parent / data["tls_ca"])
            return ClientConfig(**data)
    looked = ", ".join(str(p) for p in candidates)
    raise ConfigNotFound(f"no client config (looked in {looked}); start one with `make run`")


def save(config: ClientConfig, path: Path) -> None:
    """Write atomically with mode 0600: the file holds API keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(config), f, indent=2)
    os.replace(temp, path)


__all__ = ["FILE_NAME", "ClientConfig", "ConfigNotFound", "default_paths", "load", "save"]

"""Install a Node adapter's locked dependencies once, into a cache shared by every run.

``ensure_node_modules(package_dir)`` runs ``npm ci`` on the adapter's ``package-lock.json`` in
a cache folder named after the lock file's sha256, so a changed lock installs afresh and an
unchanged one costs nothing. A file lock keeps two pytest-xdist workers from installing into
the same folder at once.

    python adapters/node_install.py [--print-command] upstream   # install, print the command
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

ADAPTERS = Path(__file__).resolve().parent
NODE_DIR = ADAPTERS / "node"
CACHE_ENV = "SESSIONSPEC_NODE_CACHE"
#: The oldest Node that runs the adapters (top-level await, Object.hasOwn).
MIN_NODE_MAJOR = 18
_INSTALL_HINT = (
    f"install Node.js >= {MIN_NODE_MAJOR} and npm (Debian/Ubuntu: apt-get install nodejs npm)"
)
#: Written last, after npm ci succeeded: a folder without it is a broken install, redone.
_DONE = ".sessionspec-installed"


class NodeMissingError(RuntimeError):
    """Node or npm is not installed, or too old to run an adapter."""


def require_node() -> str:
    """The path of a ``node`` of version >= 18, or a NodeMissingError saying what to install."""
    node = shutil.which("node")
    if node is None:
        raise NodeMissingError(f"node is not on PATH: {_INSTALL_HINT}")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    major = int(version.lstrip("v").split(".", 1)[0])
    if major < MIN_NODE_MAJOR:
        raise NodeMissingError(f"{node} is Node {version}: {_INSTALL_HINT}")
    return node


def _require_npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise NodeMissingError(f"npm is not on PATH: {_INSTALL_HINT}")
    return npm


def cache_root() -> Path:
    """``$SESSIONSPEC_NODE_CACHE``, else ``~/.cache/sessionspec/node``."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "sessionspec" / "node"


def ensure_node_modules(package_dir: Path) -> Path:
    """Install ``package_dir``'s lock file (once per lock content); the folder holding
    ``node_modules``, for an adapter's ``--modules``."""
    lock = package_dir / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    target = cache_root() / digest[:16]
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / _DONE).is_file():
            return target
        require_node()
        npm = _require_npm()
        # A folder without the marker is an install that died half-way: start it over.
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(package_dir / name, target / name)
        # --ignore-scripts: no install script of any dependency runs; the lock's integrity
        # hashes are checked by npm ci itself.
        command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
        done = subprocess.run(command, cwd=target, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"{shlex.join(command)} failed in {target} (exit {done.returncode}):\n"
                f"{done.stdout}{done.stderr}"
            )
        (target / _DONE).write_text(digest + "\n", encoding="utf-8")
    return target


def stdio_command(adapter: str) -> str:
    """Install ``adapters/node/<adapter>`` and return the command line for ``--stdio``."""
    package_dir = NODE_DIR / adapter
    modules = ensure_node_modules(package_dir)
    return shlex.join([require_node(), str(package_dir / "adapter.mjs"), "--modules", str(modules)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Install a Node adapter's locked packages (once) and print its --stdio command."
    )
    parser.add_argument("--print-command", action="store_true", help="the default; kept for docs")
    parser.add_argument("adapter", help="a folder of adapters/node/, e.g. upstream")
    args = parser.parse_args(argv)
    try:
        print(stdio_command(args.adapter))
    except NodeMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Install requirements.txt into the running Python, handling an unreachable CPU-torch index.

requirements.txt names PyTorch's CPU wheel index (``--extra-index-url``), so a fresh Linux
machine gets the small CPU build of torch instead of a multi-GB CUDA one. pip asks every
index about every package, with retries; where that index cannot be reached (a closed network,
a local mirror that already carries the CPU wheel) each of ~150 packages would wait on it. So:
check the index host once, and drop the line if it does not resolve.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse


def reachable(url: str, timeout: float = 3.0) -> bool:
    host = urlparse(url).hostname or ""
    try:
        socket.setdefaulttimeout(timeout)
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


def main(path: str = "requirements.txt") -> int:
    lines = Path(path).read_text().splitlines()
    kept = []
    for line in lines:
        if line.startswith("--extra-index-url") and not reachable(line.split()[1]):
            print(f"(the index {line.split()[1]} is unreachable; using the default index, "
                  "which must then provide torch==2.13.0)")
            continue
        kept.append(line)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(kept) + "\n")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "-r", fh.name]
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

"""The `rtsp_server` fixture: Debian's GStreamer RTSP server serving the shared footage as live cameras.

The server runs under Debian's `/usr/bin/python3` (PyGObject is not in the virtualenv) from
`tests/support/rtsp_server.py`, on a free loopback port, with `/cam0` .. `/cam3` open to anyone and `/auth`
behind basic auth (`admin` / `RtspServer.password`).
"""

from __future__ import annotations

import selectors
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SYSTEM_PYTHON = Path("/usr/bin/python3")
SCRIPT = Path(__file__).with_name("rtsp_server.py")
PATHS = 4
PASSWORD = "s3cret"
AUTH_USER = "admin"
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
GI_CHECK = "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0')"
PACKAGES = "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good"


@dataclass(frozen=True, slots=True)
class RtspServer:
    port: int
    paths: int
    password: str
    log: Path

    def url(self, i: int) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam{i}"

    def auth_url(self, password: str | None = None) -> str:
        """The `/auth` path with credentials in the URL; the right password unless another is given."""
        secret = self.password if password is None else password
        return f"rtsp://{AUTH_USER}:{secret}@127.0.0.1:{self.port}/auth"


def require_gstreamer() -> None:
    """Fail with the fix when Debian's Python lacks PyGObject or the GStreamer RTSP server typelib."""
    problem = ""
    if not SYSTEM_PYTHON.exists():
        problem = f"{SYSTEM_PYTHON} does not exist"
    else:
        check = subprocess.run([str(SYSTEM_PYTHON), "-c", GI_CHECK], capture_output=True, text=True, check=False)
        problem = check.stderr.strip().splitlines()[-1] if check.returncode else ""
    if problem:
        pytest.fail(
            f"the RTSP test server needs Debian's GStreamer RTSP server ({problem}): run `make test`, which "
            f"installs it (apt-get install {PACKAGES} gstreamer1.0-plugins-bad)"
        )


def _read_ready(proc: subprocess.Popen[str], timeout_s: float) -> int | None:
    """The port from the server's `READY <port>` line, or None if it exits or stays silent."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            return None
    words = proc.stdout.readline().split()
    if len(words) == 2 and words[0] == "READY" and words[1].isdigit():
        return int(words[1])
    return None


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)
    if proc.stdout is not None:
        proc.stdout.close()


def start_server(
    footage: Path, log: Path, paths: int = PATHS, password: str = PASSWORD
) -> tuple[subprocess.Popen[str], RtspServer]:
    """Start the server on a free loopback port and wait for it to listen; the caller stops it."""
    require_gstreamer()
    args = [str(SYSTEM_PYTHON), str(SCRIPT), "--port", "0", "--bind", "127.0.0.1", "--file", str(footage)]
    args += ["--paths", str(paths), "--password", password]
    with log.open("w") as stderr:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True)
    port = _read_ready(proc, READY_TIMEOUT_S)
    if port is None:
        _stop(proc)
        tail = log.read_text(errors="replace")[-2000:]
        pytest.fail(f"the RTSP test server did not print READY within {READY_TIMEOUT_S:.0f} s:\n{tail}")
    return proc, RtspServer(port=port, paths=paths, password=password, log=log)


@pytest.fixture(scope="session")
def rtsp_server(footage_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtspServer]:
    proc, server = start_server(footage_path, tmp_path_factory.mktemp("rtsp") / "server.log")
    try:
        yield server
    finally:
        _stop(proc)

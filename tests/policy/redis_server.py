"""A private, real Redis on loopback for the tests: password, optional TLS, stop/continue/kill.

Everything lives in a temporary directory (config, certificates, no persistence). The server
can be frozen (SIGSTOP: a store that accepts connections and never answers), killed, and
started again on the same port, which is what the fail-open tests need.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.ports import free_port

PASSWORD = "s3cret-policy-pass"
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin", "/usr/sbin"])


def redis_missing() -> list[str]:
    return [c for c in ("redis-server", "openssl") if shutil.which(c, path=_SEARCH_PATH) is None]


def _make_certificates(where: Path) -> None:
    """A CA and a server certificate for 127.0.0.1 / localhost, signed by it."""
    openssl = shutil.which("openssl", path=_SEARCH_PATH)
    assert openssl is not None

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=where, check=True, capture_output=True, timeout=60)

    run(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.pem",
    )  # fmt: skip
    run(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr",
    )  # fmt: skip
    (where / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem",
    )  # fmt: skip
    for name in ("ca.key", "server.key"):
        (where / name).chmod(0o600)


class RedisServer:
    def __init__(self, *, tls: bool = False) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="relayguard-redis-"))
        self.port = free_port()
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None
        if tls:
            _make_certificates(self.root)

    @property
    def url(self) -> str:
        if self.tls:
            return f"rediss://:{PASSWORD}@127.0.0.1:{self.port}/0?ca={self.root / 'ca.pem'}"
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    def _config(self) -> str:
        lines = [
            "bind 127.0.0.1",
            "protected-mode yes",
            f"dir {self.root}",
            'save ""',
            "appendonly no",
            f"requirepass {PASSWORD}",
            "daemonize no",
            f"logfile {self.root / 'redis.log'}",
        ]
        if self.tls:
            lines += [
                "port 0",
                f"tls-port {self.port}",
                f"tls-cert-file {self.root / 'server.pem'}",
                f"tls-key-file {self.root / 'server.key'}",
                f"tls-ca-cert-file {self.root / 'ca.pem'}",
                "tls-auth-clients no",
            ]
        else:
            lines.append(f"port {self.port}")
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 20.0) -> None:
        conf = self.root / "redis.conf"
        conf.write_text(self._config())
        binary = shutil.which("redis-server", path=_SEARCH_PATH)
        assert binary is not None
        self.process = subprocess.Popen(
            [binary, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not listen within {timeout}s: {self.log_tail()}")

    def log_tail(self) -> str:
        log = self.root / "redis.log"
        return log.read_text()[-2000:] if log.exists() else "(no log)"

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def flush(self) -> None:
        import redis

        client = redis.Redis.from_url(f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0")
        if self.tls:
            client = redis.Redis(
                host="127.0.0.1", port=self.port, password=PASSWORD, ssl=True,
                ssl_ca_certs=str(self.ca),
            )  # fmt: skip
        try:
            client.flushall()
        finally:
            client.close()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

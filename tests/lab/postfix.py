"""A private, real Postfix instance on loopback, started and stopped by the tests.

Everything lives in one temporary directory: config, queue, data, mailboxes, the log file
written by postlogd (``maillog_file``), and the SASL database. No systemd, no syslog, nothing
under /etc/postfix is read or changed. The instance relays all outbound mail to an in-process
SMTP sink (``relayhost``), so nothing leaves the machine.

Every Postfix command gets ``-c <config dir>``: without it, commands silently act on the
system's default instance (and set-gid ones such as postqueue ignore ``MAIL_CONFIG``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.lab import config
from tests.lab.client import Session, Transcript
from tests.lab.config import Layout
from tests.lab.sink import SinkMessage, SmtpSink
from tests.ports import free_port

_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
REQUIRED_COMMANDS = ("postfix", "postconf", "postqueue", "postsuper", "postalias", "saslpasswd2")


class LabError(RuntimeError):
    """The lab could not do what was asked; the message carries the log's tail."""


def command(name: str) -> str | None:
    return shutil.which(name, path=_SEARCH_PATH)


def missing_commands() -> list[str]:
    return [name for name in REQUIRED_COMMANDS if command(name) is None]


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.write_text(text)
    path.chmod(mode)
    # Postfix tools pause (300 ms at a time, ~1.5 s in all) while main.cf looks just written;
    # the lab writes its files whole, so date them back.
    past = time.time() - 5
    os.utime(path, (past, past))


class MailLab:
    """One lab instance. ``start()`` it, use it, ``stop()`` it (``close()`` also removes it)."""

    def __init__(self, root: Path | None = None) -> None:
        if root is None:
            # not pytest's tmp_path: its 0700 parents would keep the postfix user out
            root = Path(tempfile.mkdtemp(prefix="relayguard-lab-"))
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_port())
        smtp, submission, sink = sorted(ports)
        self.layout = Layout(root, smtp, submission, sink)
        self.sink = SmtpSink(sink)
        self.mode = "closed"
        self._mode = config.mode("closed")
        self._extra: dict[str, str] = {}
        self._running = False
        self.startup_seconds = 0.0  # build + start, measured by start()

    # -- paths and ports ------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.layout.root

    @property
    def smtp_port(self) -> int:
        return self.layout.smtp_port

    @property
    def submission_port(self) -> int:
        return self.layout.submission_port

    @property
    def sink_port(self) -> int:
        return self.layout.sink_port

    @property
    def config_dir(self) -> Path:
        return self.layout.etc

    @property
    def maillog(self) -> Path:
        return self.layout.maillog

    # -- running Postfix commands ---------------------------------------------------------
    def run(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a Postfix tool (postfix, postconf, postqueue, ...) against this instance."""
        path = command(name)
        if path is None:
            raise LabError(f"{name} not found")
        argv = [path, "-c", str(self.config_dir), *args]
        env = dict(os.environ, MAIL_CONFIG=str(self.config_dir))
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise LabError(
                f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}\n{self.tail()}"
            )
        return done

    def postconf(self, *args: str) -> str:
        """``postconf -c DIR ARGS`` output, e.g. ``postconf("-n")`` or ``postconf("-M")``."""
        return self.run("postconf", *args).stdout

    # -- build, start, stop ---------------------------------------------------------------
    def build(self) -> None:
        lay = self.layout
        lay.root.chmod(0o755)
        for path in (lay.etc, lay.spool, lay.maillog.parent):
            path.mkdir(mode=0o755, parents=True, exist_ok=True)
        lay.data.mkdir(exist_ok=True)
        shutil.chown(lay.data, "postfix", "postfix")
        lay.mail.mkdir(exist_ok=True)
        lay.mail.chmod(0o1777)  # local(8) writes alias-file deliveries as "nobody"
        self._write_config()
        _write(lay.etc / "aliases", config.aliases(lay))
        self.run("postalias", str(lay.etc / "aliases"))
        lay.sasl.mkdir(mode=0o750, exist_ok=True)
        _write(lay.sasl / "smtpd.conf", config.sasl_smtpd_conf(lay))
        sasldb = lay.sasl / "sasldb2"
        for address, password in config.USERS.items():
            user, _, realm = address.partition("@")
            done = subprocess.run(
                [command("saslpasswd2") or "saslpasswd2", "-p", "-c", "-f", str(sasldb),
                 "-u", realm, user],
                input=password, capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            if done.returncode != 0:
                raise LabError(f"saslpasswd2 failed: {done.stderr.strip()}")
        # smtpd reads the sasldb as the postfix user
        for path in (lay.sasl, sasldb):
            shutil.chown(path, "root", "postfix")
        sasldb.chmod(0o640)

    def _write_config(self) -> None:
        lay = self.layout
        _write(lay.etc / "main.cf", config.main_cf(lay, self._mode, self._extra))
        _write(lay.etc / "master.cf", config.master_cf(lay, self._mode))
        _write(lay.client_access, self._mode.client_access or "# no client is trusted\n")

    def start(self) -> None:
        started = time.monotonic()
        self.build()
        self.sink.start()
        self.run("postfix", "start")
        self._running = True
        self.check_banner(self.smtp_port, since=0)
        self.check_banner(self.submission_port, since=0)
        self.startup_seconds = time.monotonic() - started

    def check_banner(self, port: int, timeout: float = 30.0, since: int | None = None) -> None:
        """Wait for a 220 banner: smtpd validates its configuration only when it starts.

        With ``since`` (a log mark), a ``fatal:`` logged after it fails at once.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                    if sock.recv(512).startswith(b"220"):
                        sock.sendall(b"QUIT\r\n")
                        sock.recv(512)
                        return
            except OSError:
                pass
            fatal = since is not None and any("fatal: " in x for x in self.log_lines_since(since))
            if fatal or time.monotonic() > deadline:
                why = "smtpd died" if fatal else f"no SMTP banner after {timeout}s"
                raise LabError(f"127.0.0.1:{port}: {why}\n{self.tail()}")
            time.sleep(0.05)

    def master_pid(self) -> int | None:
        try:
            return int((self.layout.spool / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def processes(self) -> list[int]:
        """PIDs of this instance's processes: master exports MAIL_CONFIG to every child."""
        marker = f"MAIL_CONFIG={self.config_dir}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                found.append(int(entry.name))
        return found

    def stop(self) -> None:
        """Stop Postfix and the sink; any straggler of this instance is killed by PID."""
        if self._running:
            self._running = False
            self.run("postfix", "stop", check=False)
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.sink.stop()

    def close(self) -> None:
        """Stop, then remove the lab directory (kept when RELAYGUARD_LAB_KEEP is set)."""
        self.stop()
        if not os.environ.get("RELAYGUARD_LAB_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)

    # -- relay policy ---------------------------------------------------------------------
    def set_mode(self, name: str, **options: str) -> None:
        """Switch the relay policy (see config.MODES) and reload; a no-op if unchanged.

        ``access_client`` (open-access-ok) and ``tester`` (trusted-source) pick the trusted
        client. Sessions already open keep the old policy; new ones get the new one.
        """
        wanted = config.mode(name, **options)
        if wanted == self._mode:
            self.mode = name
            return
        self._mode, self.mode = wanted, name
        self.reload()

    def configure(self, **params: str) -> None:
        """Add or override main.cf parameters (on top of the mode) and reload."""
        self._extra.update(params)
        self.reload()

    def reload(self) -> None:
        self._write_config()
        mark = self.mark()
        self.run("postfix", "reload")
        self.wait_for_log(r"postfix/master\[\d+\]: reload -- ", timeout=30, since=mark)
        self.check_banner(self.smtp_port, since=mark)
        self.check_banner(self.submission_port, since=mark)

    # -- talking SMTP ---------------------------------------------------------------------
    def session(
        self, source: str = "127.0.0.2", *, submission: bool = False, helo: str = "client.example"
    ) -> Session:
        port = self.submission_port if submission else self.smtp_port
        return Session(port, source, helo)

    def send(
        self,
        source: str = "127.0.0.2",
        sender: str = "someone@outside.example",
        recipients: Iterable[str] = ("user@external.example",),
        *,
        user: str | None = None,
        password: str | None = None,
        mechanism: str = "PLAIN",
        submission: bool = False,
        helo: str = "client.example",
        subject: str = "lab message",
    ) -> Transcript:
        """One session as an outside client from ``source``: [AUTH,] MAIL, RCPT..., DATA.

        Stops after a failed AUTH. Returns every reply; nothing raises on an SMTP refusal.
        """
        with self.session(source, submission=submission, helo=helo) as smtp:
            if user is not None and smtp.auth(user, password or "", mechanism).code != 235:
                return smtp.transcript
            smtp.mail(sender, recipients, subject)
        return smtp.transcript

    # -- the log --------------------------------------------------------------------------
    def mark(self) -> int:
        """A position in the log; pass it to log_lines_since / wait_for_log."""
        try:
            return self.maillog.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, since: int = 0) -> str:
        try:
            with self.maillog.open("rb") as log:
                log.seek(since)
                return log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_lines_since(self, mark: int) -> list[str]:
        return self.log_text(mark).splitlines()

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, pattern: str, timeout: float = 10.0, since: int = 0) -> str:
        """The first log line after ``since`` matching the regex; LabError on timeout."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_lines_since(since):
                if regex.search(line):
                    return line
            if time.monotonic() > deadline:
                raise LabError(f"no log line matching {pattern!r} in {timeout}s\n{self.tail()}")
            time.sleep(0.05)

    def wait_removed(self, queue_ids: Iterable[str], timeout: float = 30.0, since: int = 0) -> None:
        """Wait until qmgr logs ``QUEUEID: removed`` for every id (delivery finished)."""
        waiting = set(queue_ids)
        deadline = time.monotonic() + timeout
        while waiting:
            for line in self.log_lines_since(since):
                head, sep, _ = line.partition(": removed")
                if sep and line.endswith(": removed"):
                    waiting.discard(head.rpartition(" ")[2])
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise LabError(f"not delivered in {timeout}s: {sorted(waiting)}\n{self.tail()}")
            time.sleep(0.1)

    # -- the queue and the sink -----------------------------------------------------------
    def queue(self) -> list[dict[str, Any]]:
        """``postqueue -j``: one dict per queued message."""
        out = self.run("postqueue", "-j").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def flush(self) -> None:
        """``postqueue -f``: retry all deferred mail now."""
        self.run("postqueue", "-f")

    def purge(self) -> None:
        """``postsuper -d ALL``: drop every queued message."""
        self.run("postsuper", "-d", "ALL")

    def mailbox(self, name: str) -> str:
        """The local mailbox file of an alias (root, alice, bob); "" when nothing arrived."""
        try:
            return (self.layout.mail / f"{name}.mbox").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_queue_empty(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while queued := self.queue():
            if time.monotonic() > deadline:
                raise LabError(f"{len(queued)} message(s) still queued after {timeout}s")
            time.sleep(0.1)

    def sink_messages(self) -> list[SinkMessage]:
        return self.sink.messages()

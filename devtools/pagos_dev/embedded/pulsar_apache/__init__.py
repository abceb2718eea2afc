"""Apache Pulsar standalone, the broker production runs, as a child of ours (`--broker pulsar`).

Nothing is vendored: Maven resolves the broker and its dependencies from Maven Central into a
cache outside the checkout (`pom.xml` beside this file; strict checksums), once, and the broker
jar's SHA-256 is checked against the one pinned here at every start. The broker runs
`org.apache.pulsar.PulsarStandaloneStarter` on that class path with a `standalone.conf` written
here: one bookie and RocksDB metadata in its own data directory, no functions worker, no stream
storage, a small heap. Ready means the admin API answers and its health check (a producer and a
consumer on a heartbeat topic) passed. Needs `java` (17) and `mvn` on PATH.

Start-up is mostly the JVM loading and compiling classes (Jetty, Jersey): the first broker that
exits cleanly leaves a class-data archive in the cache (AppCDS), which every later start maps
instead; `quick` (the tests) also keeps the JIT at its first tier. Together about 7 s instead of
15–20 s on a 2-core machine, for some throughput: benchmarks leave `quick` off.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from pagos_dev.embedded.process import EmbeddedServiceError, free_port, live_process, spawn, tail, terminate

PULSAR_VERSION = "4.0.7"  # the <pulsar.version> of pom.xml
BROKER_SHA256 = "580dbe6a6b827d351c3fcb1858ef246da0d11ddc004bb17ddb7fd7f97d46f140"  # pulsar-broker-4.0.7.jar
MAIN_CLASS = "org.apache.pulsar.PulsarStandaloneStarter"
POM = Path(__file__).with_name("pom.xml")
_BROKER_JAR = f"pulsar-broker-{PULSAR_VERSION}.jar"

# Netty, RocksDB and the JVM metrics reach into JDK internals: the flags Pulsar's own launch
# script passes on Java 17.
_JVM_OPENS = [
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-opens=java.base/java.util.zip=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.management/sun.management=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
]

_LOG4J2 = """\
status = error
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = %d{ISO8601} %-5p [%t] %c{1} - %m%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
# Start-up and shutdown milestones, to read in its log
logger.standalone.name = org.apache.pulsar.PulsarStandalone
logger.standalone.level = info
logger.service.name = org.apache.pulsar.broker.PulsarService
logger.service.level = info
"""


def missing_tools() -> list[str]:
    """What of java and mvn is not on PATH (empty: the broker can be assembled and run here)."""
    return [tool for tool in ("java", "mvn") if shutil.which(tool) is None]


def cache_dir() -> Path:
    """Where the Maven repository of this release lives: PAGOS_PULSAR_CACHE, else the user's cache."""
    if explicit := os.environ.get("PAGOS_PULSAR_CACHE"):
        return Path(explicit)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pagos-dev" / f"pulsar-{PULSAR_VERSION}"


def assemble(cache: Path | None = None) -> list[Path]:
    """The broker's class path, resolved by Maven into `cache` the first time (minutes) and read
    from there afterwards (no network). Raises if the tools are missing, Maven fails, or the broker
    jar is not the one pinned."""
    cache = cache or cache_dir()
    classpath_file, stamp_file = cache / "classpath.txt", cache / "pom.sha256"
    pom_digest = hashlib.sha256(POM.read_bytes()).hexdigest()
    if classpath_file.exists() and stamp_file.exists() and stamp_file.read_text().strip() == pom_digest:
        entries = [Path(p) for p in classpath_file.read_text().strip().split(os.pathsep) if p]
        if entries and all(p.is_file() for p in entries):
            _check_broker(entries)
            return entries
    if missing := missing_tools():
        raise EmbeddedServiceError(f"Apache Pulsar needs {' and '.join(missing)} on PATH (Java 17 and Maven)")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / "classpath.tmp"
    args = [
        "mvn", "--batch-mode", "--quiet", "--strict-checksums", "--file", str(POM),
        f"-Dmaven.repo.local={cache / 'repository'}",
        "dependency:build-classpath", "-Dmdep.includeScope=runtime", f"-Dmdep.outputFile={tmp}",
    ]  # fmt: skip
    result = subprocess.run(args, capture_output=True, check=False, cwd=cache)  # noqa: S603 - fixed arguments
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")
        raise EmbeddedServiceError(f"Maven could not assemble Apache Pulsar {PULSAR_VERSION}:\n{output[-4000:]}")
    entries = [Path(p) for p in tmp.read_text().strip().split(os.pathsep) if p]
    _check_broker(entries)
    tmp.replace(classpath_file)
    stamp_file.write_text(pom_digest + "\n")
    return entries


def _check_broker(entries: list[Path]) -> None:
    jars = [p for p in entries if p.name == _BROKER_JAR]
    if not jars:
        raise EmbeddedServiceError(f"{_BROKER_JAR} is not on the class path Maven resolved")
    digest = hashlib.sha256(jars[0].read_bytes()).hexdigest()
    if digest != BROKER_SHA256:
        raise EmbeddedServiceError(f"{jars[0]} has SHA-256 {digest}, not the pinned {BROKER_SHA256}")


class EmbeddedApachePulsar:
    """One Apache Pulsar standalone over `data_dir`: the binary protocol on `host:port`, the admin
    REST API on `web_port` (0: free ports, kept for the life of this object, restarts included)."""

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        web_port: int = 0,
        heap: str = "512m",
        quick: bool = False,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.host = host
        self.port = port or free_port()
        self.web_port = web_port or free_port()
        self.heap = heap
        self.quick = quick
        self.log_path = self.data_dir / "pulsar.log"
        self._pid_file = self.data_dir / "pulsar.pid"
        self._process: subprocess.Popen[bytes] | None = None
        self._archive = cache_dir() / "classes.jsa"
        self._archive_tmp: Path | None = None  # being written by the running JVM at its exit

    @property
    def url(self) -> str:
        return f"pulsar://{self.host}:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.web_port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise EmbeddedServiceError("Apache Pulsar is not running")
        return self._process.pid

    async def start(self, timeout: float = 120) -> None:
        classpath = await asyncio.to_thread(assemble)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self._stop_leftover()
        conf, log4j = self.data_dir / "standalone.conf", self.data_dir / "log4j2.properties"
        conf.write_text(self._standalone_conf())
        log4j.write_text(_LOG4J2)
        args = [
            "java", f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:MaxDirectMemorySize=256m",
            *self._startup_options(), *_JVM_OPENS, f"-Dlog4j2.configurationFile={log4j}",
            "-cp", os.pathsep.join(map(str, classpath)), MAIN_CLASS,
            "--config", str(conf), "--no-functions-worker", "--no-stream-storage",
            "--metadata-dir", str(self.data_dir / "metadata"),
            "--bookkeeper-dir", str(self.data_dir / "bookkeeper"),
            "--bookkeeper-port", str(self._bookie_port()),
        ]  # fmt: skip
        self._process = spawn(args, log_path=self.log_path, cwd=self.data_dir)
        self._pid_file.write_text(str(self._process.pid))
        await self._wait_ready(timeout)

    async def stop(self, *, immediate: bool = False) -> None:
        """SIGTERM (the broker closes its topics and clients, then exits) or, `immediate`, SIGKILL;
        SIGKILL anyway after 30 s."""
        if self._process is not None:
            sig = signal.SIGKILL if immediate else signal.SIGTERM
            await terminate(self._process.pid, sig, timeout=30, process=self._process)
        self._process = None
        self._pid_file.unlink(missing_ok=True)
        if (tmp := self._archive_tmp) is not None:
            self._archive_tmp = None
            if tmp.exists() and tmp.stat().st_size > 0 and not self._archive.exists():
                tmp.replace(self._archive)  # whole or not at all: another JVM may be mapping it
            tmp.unlink(missing_ok=True)

    def _startup_options(self) -> list[str]:
        options = ["-XX:TieredStopAtLevel=1"] if self.quick else []
        if self._archive.exists():
            return [*options, f"-XX:SharedArchiveFile={self._archive}"]  # ignored, with a warning, if stale
        if self._archive_tmp is None:
            self._archive_tmp = self._archive.with_name(f"classes-{os.getpid()}-{id(self)}.jsa.tmp")
        return [*options, f"-XX:ArchiveClassesAtExit={self._archive_tmp}"]

    async def close(self) -> None:
        await self.stop()

    def _bookie_port(self) -> int:
        """The bookie's identity is its address, written into its data at the first start: the
        same data directory must come back on the same port."""
        archivo = self.data_dir / "bookie.port"
        with contextlib.suppress(OSError, ValueError):
            return int(archivo.read_text())
        port = free_port()
        archivo.write_text(str(port))
        return port

    def _standalone_conf(self) -> str:
        settings = {
            "clusterName": "standalone",
            "bindAddress": self.host,
            "advertisedAddress": self.host,
            "brokerServicePort": self.port,
            "webServicePort": self.web_port,
            # One bookie: every ledger on it, one copy.
            "managedLedgerDefaultEnsembleSize": 1,
            "managedLedgerDefaultWriteQuorum": 1,
            "managedLedgerDefaultAckQuorum": 1,
            "loadManagerClassName": "org.apache.pulsar.broker.loadbalance.NoopLoadManager",
            "loadBalancerEnabled": "false",
            "functionsWorkerEnabled": "false",
            "webSocketServiceEnabled": "false",
            "transactionCoordinatorEnabled": "false",
            "allowAutoTopicCreation": "true",
            "allowAutoTopicCreationType": "non-partitioned",  # as the deployment guide creates them
            # Lean caches for a 2-core machine shared with the service and PostgreSQL.
            "managedLedgerCacheSizeMB": 32,
            "dbStorage_writeCacheMaxSizeMb": 16,
            "dbStorage_readAheadCacheMaxSizeMb": 16,
            "dbStorage_rocksDB_blockCacheSize": 16 * 1024 * 1024,
            "numIOThreads": 2,
            "numHttpServerThreads": 4,
            "bookkeeperNumberOfChannelsPerBookie": 1,
            "allowLoopback": "true",
            "diskUsageThreshold": 0.99,
            "diskUsageWarnThreshold": 0.99,
            "statusFilePath": "",
            "brokerShutdownTimeoutMs": 10000,
        }
        return "".join(f"{k}={v}\n" for k, v in settings.items())

    async def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(self._healthy):
            if self._process is not None and self._process.poll() is not None:
                raise EmbeddedServiceError(
                    f"Apache Pulsar exited with {self._process.returncode}:\n{tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(f"Apache Pulsar not ready after {timeout:.0f} s:\n{tail(self.log_path)}")
            await asyncio.sleep(0.25)

    def _healthy(self) -> bool:
        """The default namespace exists (the standalone made it) and the health check passed."""
        try:
            for path in ("/admin/v2/namespaces/public/default", "/admin/v2/brokers/health"):
                with urllib.request.urlopen(self.admin_url + path, timeout=10) as resp:  # noqa: S310 - our own
                    if resp.status != 200:  # noqa: PLR2004 - HTTP OK
                        return False
        except (urllib.error.URLError, OSError):
            return False
        return True

    async def _stop_leftover(self) -> None:
        """A broker left by a crash of ours still holds the ports and the RocksDB lock."""
        with contextlib.suppress(OSError, ValueError):
            pid = int(self._pid_file.read_text())
            if live_process(pid, MAIN_CLASS):
                await terminate(pid, signal.SIGTERM, timeout=30)
        self._pid_file.unlink(missing_ok=True)

"""A single-node KRaft Apache Kafka broker from Maven Central jars, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from gridline.devstack.paths import Paths, port, repo_root
from gridline.devstack.processes import ManagedProcess

POM = "deploy/local/kafka/pom.xml"

LOG4J = """\
status = warn
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""


def _install_java_and_maven() -> None:
    if shutil.which("java") and shutil.which("mvn"):
        return
    print("installing a Java 17 runtime and Maven (Debian packages)")
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "openjdk-17-jre-headless", "maven"], check=True, env=env
    )


class KafkaBroker:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.port = port("GRIDLINE_KAFKA_PORT", 9092)
        self.controller_port = port("GRIDLINE_KAFKA_CONTROLLER_PORT", 9093)
        self.home = paths.run / "kafka"
        self.lib = paths.cache / "kafka-lib"
        self.config = self.home / "server.properties"
        heap = "384m"
        self.process = ManagedProcess(
            "kafka",
            [
                "java",
                f"-Xms{heap}",
                f"-Xmx{heap}",
                "-XX:+UseG1GC",
                f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
                "-cp",
                f"{self.lib}/*",
                "kafka.Kafka",
                str(self.config),
            ],
            pid_file=paths.pid_file("kafka"),
            log_path=paths.logs / "kafka.out",
            marker=str(self.config),
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def fetch(self) -> None:
        """Fetch the broker's jars once into the cache (atomically: all or nothing)."""
        if self.lib.is_dir() and any(self.lib.glob("kafka_2.13-*.jar")):
            return
        _install_java_and_maven()
        self.paths.cache.mkdir(parents=True, exist_ok=True)
        print("fetching the Kafka broker's jars with Maven (once)")
        with tempfile.TemporaryDirectory(dir=self.paths.cache) as tmp:
            subprocess.run(
                [
                    "mvn",
                    "-q",
                    "-B",
                    "-f",
                    str(repo_root() / POM),
                    "org.apache.maven.plugins:maven-dependency-plugin:3.10.0:copy-dependencies",
                    f"-DoutputDirectory={tmp}/lib",
                ],
                check=True,
            )
            Path(tmp, "lib").rename(self.lib)

    def _configure(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        data = self.home / "data"
        self.config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={data}",
                    "num.partitions=6",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=6",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "num.network.threads=2",
                    "num.io.threads=2",
                    "auto.create.topics.enable=false",
                    "message.max.bytes=16777216",
                    "",
                ]
            )
        )
        (self.home / "log4j2.properties").write_text(
            LOG4J.format(log=self.paths.logs / "kafka.log")
        )
        if not (data / "meta.properties").exists():
            cluster = (
                subprocess.run(
                    ["java", "-cp", f"{self.lib}/*", "kafka.tools.StorageTool", "random-uuid"],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            subprocess.run(
                [
                    "java",
                    f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
                    "-cp",
                    f"{self.lib}/*",
                    "kafka.tools.StorageTool",
                    "format",
                    "--standalone",
                    "--ignore-formatted",
                    "-t",
                    cluster,
                    "-c",
                    str(self.config),
                ],
                check=True,
                capture_output=True,
            )

    def up(self, timeout: float = 90) -> None:
        if self.process.alive and self.ready():
            print(f"kafka: already running on {self.bootstrap}")
            return
        self.fetch()
        self._configure()
        self.process.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.alive:
                raise SystemExit(
                    f"gridline-dev: Kafka exited during start:\n{self.process.log_tail()}"
                )
            if self.ready():
                print(f"kafka: ready on {self.bootstrap}")
                return
            time.sleep(0.5)
        raise SystemExit(
            f"gridline-dev: Kafka not ready after {timeout:.0f}s:\n{self.process.log_tail()}"
        )

    def ready(self) -> bool:
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refusals are expected here

        async def probe() -> bool:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
            try:
                await asyncio.wait_for(admin.start(), 5)
                await asyncio.wait_for(admin.list_topics(), 5)
                return True
            except Exception:
                return False
            finally:
                await admin.close()

        return asyncio.run(probe())

    def down(self) -> None:
        if self.process.alive:
            self.process.stop(timeout=30)
            print("kafka: stopped")

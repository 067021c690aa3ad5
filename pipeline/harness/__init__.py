"""The whole pipeline as real processes, for the end-to-end tests, the fault tests and the benchmarks.

- :class:`Pipeline` (:mod:`.processes`): the four services as subprocesses, isolated by topics,
  groups, MQTT session and InfluxDB database;
- :class:`Receiver` (:mod:`.receiver`): the HTTP endpoint Apprise's ``json://`` posts to;
- :class:`PrivateStack` (:mod:`.stack`): Mosquitto, Kafka and InfluxDB of their own;
- :class:`StationFeed` (:mod:`.mqtt`): an MQTT publisher that behaves like a station data logger;
- :class:`KafkaProbe` and the InfluxDB counts (:mod:`.probes`).

Nothing in the services imports this package; it needs a checkout (``deploy/``), not an install.
"""

from pipeline.harness.mqtt import StationFeed, close_bridge_session, dev_password, open_bridge_session
from pipeline.harness.probes import KafkaProbe, flux_counts, influx_statement, read_topic, reading_counts
from pipeline.harness.processes import (
    REPO,
    RIVERGUARD,
    ROUTING,
    SERVICES,
    Pipeline,
    ServiceProcess,
    isolated,
    process_cpu_s,
    process_rss_mb,
    settings_env,
)
from pipeline.harness.receiver import Delivery, Receiver
from pipeline.harness.stack import PrivateStack, free_port, port_open

__all__ = [
    "REPO",
    "RIVERGUARD",
    "ROUTING",
    "SERVICES",
    "Delivery",
    "KafkaProbe",
    "Pipeline",
    "PrivateStack",
    "Receiver",
    "ServiceProcess",
    "StationFeed",
    "close_bridge_session",
    "dev_password",
    "flux_counts",
    "free_port",
    "influx_statement",
    "isolated",
    "open_bridge_session",
    "port_open",
    "process_cpu_s",
    "process_rss_mb",
    "read_topic",
    "reading_counts",
    "settings_env",
]

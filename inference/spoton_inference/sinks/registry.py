"""The deliverers of this replica, by sink kind: what the dispatcher sends each sink through."""

from __future__ import annotations

from spoton_inference.core.sink_policy import SinkPolicy
from spoton_inference.core.sinks import Deliverer, SinkKind
from spoton_inference.settings import Settings
from spoton_inference.sinks.mqtt import MqttDeliverer
from spoton_inference.sinks.webhook import WebhookDeliverer


def build_deliverers(settings: Settings, policy: SinkPolicy) -> dict[str, Deliverer]:
    return {
        SinkKind.WEBHOOK: WebhookDeliverer(
            policy, timeout_s=settings.sink_timeout_s, max_connections=settings.sink_max_connections
        ),
        SinkKind.MQTT: MqttDeliverer(timeout_s=settings.sink_timeout_s, max_connections=settings.sink_max_connections),
    }

"""The deliverers of this replica, by sink kind: what the dispatcher sends each sink through."""

from __future__ import annotations

from spoton_inference.services.sink_policy import SinkPolicy
from spoton_inference.services.sinks import Deliverer, SinkKind
from spoton_inference.sinks.mqtt import MqttDeliverer
from spoton_inference.sinks.webhook import WebhookDeliverer


def build_deliverers(policy: SinkPolicy, *, timeout_s: float, max_connections: int) -> dict[str, Deliverer]:
    """``timeout_s`` bounds one delivery (SPOTON_SINK_TIMEOUT_S); ``max_connections`` each kind's pool."""
    return {
        SinkKind.WEBHOOK: WebhookDeliverer(policy, timeout_s=timeout_s, max_connections=max_connections),
        SinkKind.MQTT: MqttDeliverer(timeout_s=timeout_s, max_connections=max_connections),
    }

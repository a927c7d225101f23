"""Deliverers: one module per SinkKind transport (webhook, MQTT), picked by the dispatcher."""

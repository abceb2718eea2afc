"""Reading and writing topics in tests with the plain pulsar-client, as any other service would."""

from __future__ import annotations

import time

import pulsar


def client(url: str) -> pulsar.Client:
    return pulsar.Client(url, operation_timeout_seconds=10, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))


def subscribe(c: pulsar.Client, topic: str, subscription: str = "test-observer") -> pulsar.Consumer:
    return c.subscribe(
        topic, subscription, consumer_type=pulsar.ConsumerType.Shared, initial_position=pulsar.InitialPosition.Earliest
    )


def receive(consumer: pulsar.Consumer, n: int, timeout: float) -> list[pulsar.Message]:
    """Up to `n` messages, acknowledged, waiting at most `timeout` seconds in all."""
    messages: list[pulsar.Message] = []
    deadline = time.monotonic() + timeout
    while len(messages) < n and (left := deadline - time.monotonic()) > 0:
        try:
            msg = consumer.receive(timeout_millis=max(1, int(min(left, 0.5) * 1000)))
        except pulsar.Timeout:
            continue
        consumer.acknowledge(msg)
        messages.append(msg)
    return messages

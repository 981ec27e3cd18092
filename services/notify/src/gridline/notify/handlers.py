"""notify's use case for events: turn each work-order event into one delivery per
subscription, stored in the event's transaction (dispatcher.py sends them)."""

from __future__ import annotations

from dataclasses import dataclass

from gridline.common.consumer import Incoming
from gridline.common.events import WorkOrderEvent
from gridline.common.ids import stable_id
from gridline.common.pg import Connection
from gridline.notify.adapters import store
from gridline.notify.domain import messages

SCHEMA = "notify"


def notification_id(event_id: str, subscription: str) -> str:
    """Stable per (event, subscription): a redelivered event yields the same id."""
    return stable_id("notification", event_id, subscription)


@dataclass(frozen=True)
class Subscription:
    name: str
    url: str


@dataclass
class Notify:
    subscriptions: list[Subscription]

    async def on_workorder_events(
        self, conn: Connection, events: list[Incoming[WorkOrderEvent]]
    ) -> None:
        """Every delivery of the batch (events x subscriptions) in one statement."""
        deliveries: list[store.Delivery] = []
        for incoming in events:
            event, envelope = incoming.data, incoming.envelope
            ids = [notification_id(envelope.id, sub.name) for sub in self.subscriptions]
            bodies = messages.bodies(event, envelope, ids)
            for sub, nid, body in zip(self.subscriptions, ids, bodies, strict=True):
                deliveries.append(
                    store.Delivery(
                        notification_id=nid,
                        event_id=envelope.id,
                        event_type=envelope.type,
                        work_order_id=event.work_order_id,
                        event_version=event.version,
                        subscription=sub.name,
                        url=sub.url,
                        body=body,
                    )
                )
        await store.add_deliveries(conn, deliveries)

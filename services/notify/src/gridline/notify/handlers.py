"""notify's use cases for events: turn each work-order event and each deadline warning into
one delivery per subscription, and each status change of a partner's tip into one callback
to that partner, stored in the event's transaction (dispatcher.py sends them); follow
partners' changes.

Every handler here is idempotent by itself, so the consumer keeps no inbox row for them:
a delivery's id derives from (event, subscription) and is inserted ON CONFLICT DO NOTHING,
and a partner's state applies only over an older or equal `updated_at`."""

from __future__ import annotations

from dataclasses import dataclass

from gridline.common.consumer import Incoming, idempotent
from gridline.common.events import (
    DeadlineWarning,
    PartnerUpdated,
    TipStatusChanged,
)
from gridline.common.ids import stable_id
from gridline.common.pg import Connection
from gridline.notify.adapters import partners, store
from gridline.notify.domain import callbacks, messages

SCHEMA = "notify"
# A warning's place after the order's events of its version (adapters/store.py claim_due).
WARNING_RANK = {"yellow": 1, "red": 2}


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

    @idempotent
    async def on_workorder_events(
        self, conn: Connection, events: list[Incoming[messages.Notified]]
    ) -> None:
        """Every delivery of the batch (events x subscriptions) in one statement.

        A deadline warning is delivered the same way, to every subscription (a red one
        names the supervisor among its recipients). It is no move of the order: it carries
        the version of the event that made the assignment warned about, so it is never
        dropped as stale (notify drops nothing by version) and is ranked after that
        event without holding up the order's later events."""
        deliveries: list[store.Delivery] = []
        for incoming in events:
            event, envelope = incoming.data, incoming.envelope
            ids = [notification_id(envelope.id, sub.name) for sub in self.subscriptions]
            rank = WARNING_RANK[event.level] if isinstance(event, DeadlineWarning) else 0
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
                        warning=rank,
                    )
                )
        await store.add_deliveries(conn, deliveries)

    @idempotent
    async def on_tip_status_changes(
        self, conn: Connection, events: list[Incoming[TipStatusChanged]]
    ) -> None:
        """One callback per status change of a tip whose partner can be called back; parked
        while notify has not followed the partner as far as intake had when it emitted the
        change (known only from its tips, or its latest PartnerUpdated still on its way);
        nothing for a partner known to be revoked or without a callback URL (later changes
        of the tip are sent if it gets one). Two statements for the partners, at most two
        for the deliveries."""
        if not events:
            return
        known = {
            p.partner_id: p
            for p in await partners.placeholders_then_read(
                conn, [i.data.partner_id for i in events]
            )
        }
        due: list[store.Delivery] = []
        parked: list[store.Delivery] = []
        for incoming in events:
            tip, envelope = incoming.data, incoming.envelope
            partner = known[tip.partner_id]
            followed = partner.followed(tip.partner_updated_at)
            if followed and partner.why_not_called() is not None:
                continue
            sub = callbacks.subscription(tip.partner_id)
            nid = notification_id(envelope.id, sub)
            delivery = store.Delivery(
                notification_id=nid,
                event_id=envelope.id,
                event_type=envelope.type,
                work_order_id=tip.work_order_id,
                event_version=tip.version,
                subscription=sub,
                url=partner.callback_url or "",  # sent to the partner's URL at send time
                body=callbacks.body(tip, nid),
                partner_since=None if followed else tip.partner_updated_at,
            )
            (due if followed else parked).append(delivery)
        await store.add_deliveries(conn, due)
        await store.add_deliveries(conn, parked, parked=True)

    @idempotent
    async def on_partner_updates(
        self, conn: Connection, events: list[Incoming[PartnerUpdated]]
    ) -> None:
        """Follow partners (an older PartnerUpdated never overwrites a newer one); release
        parked callbacks of a partner that can now be called back, and mark dead the
        pending ones of a partner revoked or left without a callback URL."""
        newest: dict[str, PartnerUpdated] = {}
        for incoming in events:
            p = incoming.data
            if p.partner_id not in newest or newest[p.partner_id].updated_at <= p.updated_at:
                newest[p.partner_id] = p
        applied = await partners.apply(
            conn,
            [
                partners.PartnerState(
                    p.partner_id, p.active, p.callback_url, p.secret_versions, p.updated_at
                )
                for p in newest.values()
            ],
        )
        if applied:
            await partners.settle_pending(conn, applied)
            await partners.signal_changes(conn)

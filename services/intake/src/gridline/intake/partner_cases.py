"""Partners' use cases: an operator registers, rotates, revokes and changes a partner; a
partner sets its callback URL. Each change commits with its PartnerUpdated event (the
outbox), and this process's directory of keys is refreshed at once after it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from gridline.common.clock import Clock
from gridline.common.events import PartnerUpdated
from gridline.common.partners import signing_secret
from gridline.common.pg import Connection, Outgoing, Pool, add_to_outbox
from gridline.intake.adapters import partners as store
from gridline.intake.domain import partners
from gridline.intake.domain.partners import Directory, Limiter, Partner, PartnerProblem


class NoSecretKey(Exception):
    """GRIDLINE_PARTNER_SECRET_KEY is not set: no signing secret can be issued or checked."""

    def __init__(self) -> None:
        super().__init__(
            "intake has no partner secret key: set GRIDLINE_PARTNER_SECRET_KEY (32 or more"
            " characters, the same for every service) and restart; `gridline credentials"
            " env` prints it"
        )


class UnknownPartner(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"no partner is named {name!r} (or has that id); GET /admin/partners")


class NameTaken(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"a partner named {name!r} exists already; choose another name")


@dataclass(frozen=True)
class Issued:
    """What an operator is shown once: a new key, and the signing secret when it is new."""

    partner: Partner
    key: str | None
    secret: str | None
    old_keys_expire_at: datetime | None = None


_UNCHANGED = object()
# How a partner changes, inside the change's transaction.
Change = Callable[[Connection, Partner, datetime], Awaitable[Issued]]


@dataclass
class PartnerRegistry:
    """The registry's state in this process: the directory the front door looks keys up
    in, and the partners' token buckets."""

    master_key: str | None = None
    directory: Directory = field(default_factory=Directory)
    limiter: Limiter = field(default_factory=Limiter)
    # One refresh at a time: the periodic one may have read the tables before a change
    # committed; were it to finish after the change's own refresh, the new key would vanish
    # until the next period (a partner just registered got 403 on its first request).
    _refreshing: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def secrets(self, partner: Partner, now: datetime) -> list[str]:
        """The signing secrets a partner's request may be signed with now."""
        if self.master_key is None:
            raise NoSecretKey()
        return [
            signing_secret(self.master_key, partner.partner_id, v)
            for v in partner.versions_in_force(now)
        ]

    def _secret(self, partner: Partner) -> str:
        if self.master_key is None:
            raise NoSecretKey()
        return signing_secret(self.master_key, partner.partner_id, partner.secret_versions[0])

    async def refresh(self, pool: Pool) -> None:
        """Read the directory again; a refresh asked for after a change commits reads it
        after any refresh already under way, so the change is never overwritten."""
        async with self._refreshing:
            async with pool.acquire() as conn:
                keys, found = await store.directory(conn)
            self.directory = Directory.of(keys, found)

    @staticmethod
    async def _announce(conn: Connection, clock: Clock, source: str, partner: Partner) -> None:
        event = PartnerUpdated(
            partner_id=partner.partner_id,
            name=partner.name,
            active=partner.active,
            callback_url=partner.callback_url,
            secret_versions=list(partner.secret_versions),
            updated_at=partner.updated_at,
        )
        await add_to_outbox(conn, source, [Outgoing(event, clock.now())])

    async def register(
        self,
        pool: Pool,
        clock: Clock,
        source: str,
        *,
        name: str,
        rate_per_s: float,
        burst: int,
        callback_url: str | None,
    ) -> Issued:
        """A new partner with its first key and secret (version 1). Raises NameTaken."""
        if self.master_key is None:
            raise NoSecretKey()
        now = clock.now()
        partner = partners.register(
            partners.new_partner_id(), name, rate_per_s, burst, callback_url, now
        )
        key = partners.new_key()
        async with pool.acquire() as conn, conn.transaction():
            if not await store.insert(conn, partner):
                raise NameTaken(partner.name)
            await store.add_key(conn, partners.key_digest(key), partner.partner_id, now)
            await self._announce(conn, clock, source, partner)
        await self.refresh(pool)
        return Issued(partner, key, self._secret(partner))

    async def _change(
        self,
        pool: Pool,
        clock: Clock,
        source: str,
        name: str,
        how: Change,
        *,
        by_id: bool = False,
    ) -> Issued:
        now = clock.now()
        async with pool.acquire() as conn, conn.transaction():
            find = store.by_id if by_id else store.by_name
            found = await find(conn, name, lock=True)
            if found is None:
                raise UnknownPartner(name)
            issued = await how(conn, partners.settled(found, now), now)
            await store.update(conn, issued.partner)
            await self._announce(conn, clock, source, issued.partner)
        await self.refresh(pool)
        return issued

    async def rotate(
        self,
        pool: Pool,
        clock: Clock,
        source: str,
        name: str,
        *,
        overlap: timedelta,
        secret: bool,
    ) -> Issued:
        """A new key (shown once); the partner's current keys stay valid for `overlap` on
        the service clock. With `secret`, a new signing secret too, the current one
        accepted for the same overlap."""
        if secret and self.master_key is None:
            raise NoSecretKey()
        key = partners.new_key()

        async def how(conn: Connection, partner: Partner, now: datetime) -> Issued:
            if not partner.active:
                raise PartnerProblem(f"{partner.name} is revoked; register a new partner")
            until = now + overlap
            await store.expire_keys(conn, partner.partner_id, until)
            await store.add_key(conn, partners.key_digest(key), partner.partner_id, now)
            changed = (
                partners.rotate_secret(partner, now, overlap)
                if secret
                else replace(partner, updated_at=now)
            )
            return Issued(changed, key, self._secret(changed) if secret else None, until)

        return await self._change(pool, clock, source, name, how)

    async def revoke(self, pool: Pool, clock: Clock, source: str, name: str) -> Partner:
        """The partner is inactive and every key of it refused at once."""

        async def how(conn: Connection, partner: Partner, now: datetime) -> Issued:
            await store.expire_keys(conn, partner.partner_id, now)
            return Issued(replace(partner, active=False, updated_at=now), None, None, now)

        return (await self._change(pool, clock, source, name, how)).partner

    async def change(
        self,
        pool: Pool,
        clock: Clock,
        source: str,
        name: str,
        *,
        rate_per_s: float | None = None,
        burst: int | None = None,
        callback_url: str | object | None = _UNCHANGED,
        by_id: bool = False,
    ) -> Partner:
        """A new rate limit and/or callback URL (None removes the callback)."""

        async def how(conn: Connection, partner: Partner, now: datetime) -> Issued:
            rate = partner.rate_per_s if rate_per_s is None else rate_per_s
            size = partner.burst if burst is None else burst
            partners.check_limits(rate, size)
            url = partner.callback_url
            if callback_url is not _UNCHANGED:
                url = (
                    partners.check_callback_url(str(callback_url), "callback_url")
                    if callback_url
                    else None
                )
            changed = replace(
                partner, rate_per_s=rate, burst=size, callback_url=url, updated_at=now
            )
            return Issued(changed, None, None)

        return (await self._change(pool, clock, source, name, how, by_id=by_id)).partner

    async def listing(self, pool: Pool, clock: Clock) -> list[tuple[Partner, int]]:
        """Every partner with how many of its keys are valid now."""
        async with pool.acquire() as conn:
            found = await store.all_partners(conn)
            counts = await store.key_counts(conn, clock.now())
        return [(p, counts.get(p.partner_id, 0)) for p in found]

    async def partner(self, pool: Pool, partner_id: str) -> Partner | None:
        async with pool.acquire() as conn:
            return await store.by_id(conn, partner_id)

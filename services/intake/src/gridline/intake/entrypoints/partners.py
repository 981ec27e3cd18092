"""Partners' HTTP surfaces: the operators' registry (/admin/partners, the admin key) and a
partner's own callback URL (/v1/partner/callback, signed: the front door has verified the
partner). Thin routes: partner_cases.py decides."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from gridline.common.auth import require_admin
from gridline.common.http import answers
from gridline.intake.bootstrap import IntakeService
from gridline.intake.domain import partners
from gridline.intake.domain.partners import Partner, PartnerProblem
from gridline.intake.entrypoints.front_door import presented_partner
from gridline.intake.partner_cases import Issued, NameTaken, NoSecretKey, UnknownPartner

admin = APIRouter(prefix="/admin/partners", tags=["Partners (operators)"])
own = APIRouter(prefix="/v1/partner", tags=["Partners"])


async def _service(request: Request) -> IntakeService:
    svc: IntakeService = request.app.state.service
    return svc


async def _admin(request: Request) -> IntakeService:
    svc: IntakeService = request.app.state.service
    require_admin(request, svc.settings.admin_key)
    return svc


async def _partner_id(request: Request) -> str:
    partner_id = presented_partner(request.scope)
    if partner_id is None:  # the front door refuses these already
        raise HTTPException(403, "this endpoint is for partners: send your partner key")
    return partner_id


Admin = Annotated[IntakeService, Depends(_admin)]
Service = Annotated[IntakeService, Depends(_service)]
PartnerId = Annotated[str, Depends(_partner_id)]
Name = Annotated[str, Path(min_length=1, max_length=100, description="The name or partner_id.")]
CallbackUrl = Annotated[
    str, Field(max_length=partners.MAX_URL), AfterValidator(partners.check_callback_url)
]

ADMIN_ERRORS = answers(
    {
        400: "a malformed field (named)",
        401: "no admin key",
        403: "the admin key is not valid",
        404: "no partner of that name or id",
        409: "a partner of that name exists, or the partner secret key is not configured",
    }
)


class NewPartner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=partners.MAX_NAME, description="Unique.")
    rate_per_s: float = Field(default=5.0, gt=0, le=10_000, description="Requests a second.")
    burst: int = Field(default=20, ge=1, le=100_000, description="Requests saved up at most.")
    callback_url: CallbackUrl | None = None


class PartnerChange(BaseModel):
    """Only the fields sent change; `callback_url: null` removes the callback."""

    model_config = ConfigDict(extra="forbid")

    rate_per_s: float | None = Field(default=None, gt=0, le=10_000)
    burst: int | None = Field(default=None, ge=1, le=100_000)
    callback_url: CallbackUrl | None = None


class Rotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_hours: float = Field(
        default=24.0,
        ge=0,
        le=24 * 30,
        description="How long the current key (and secret) stay valid, on the service clock.",
    )
    secret: bool = Field(default=False, description="Issue a new signing secret too.")


class PartnerView(BaseModel):
    partner_id: str
    name: str
    active: bool
    rate_per_s: float
    burst: int
    callback_url: str | None
    secret_versions: list[int] = Field(description="In force, newest first.")
    secret_overlap_until: AwareDatetime | None
    keys: int | None = Field(default=None, description="Keys valid now (in the listing).")
    created_at: AwareDatetime
    updated_at: AwareDatetime

    @classmethod
    def of(cls, p: Partner, keys: int | None = None) -> PartnerView:
        return cls(
            partner_id=p.partner_id,
            name=p.name,
            active=p.active,
            rate_per_s=p.rate_per_s,
            burst=p.burst,
            callback_url=p.callback_url,
            secret_versions=list(p.secret_versions),
            secret_overlap_until=p.secret_overlap_until,
            keys=keys,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


class IssuedView(PartnerView):
    """Shown once: store the key and secret now; intake keeps neither."""

    key: str | None = Field(description="The new partner key (gpk_...).")
    secret: str | None = Field(description="The signing secret (gps_...), when new.")
    old_keys_expire_at: AwareDatetime | None = None

    @classmethod
    def issued(cls, i: Issued) -> IssuedView:
        return cls(
            **PartnerView.of(i.partner).model_dump(),
            key=i.key,
            secret=i.secret,
            old_keys_expire_at=i.old_keys_expire_at,
        )


class CallbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: CallbackUrl = Field(description="Where your tips' status changes are POSTed.")


class CallbackView(BaseModel):
    partner_id: str
    url: str | None


def _problem(exc: Exception) -> HTTPException:
    if isinstance(exc, UnknownPartner):
        return HTTPException(404, str(exc))
    if isinstance(exc, NameTaken | NoSecretKey):
        return HTTPException(409, str(exc))
    return HTTPException(400, str(exc))


_FAILS = (UnknownPartner, NameTaken, NoSecretKey, PartnerProblem)


@admin.post("", status_code=201, response_model=IssuedView, responses=ADMIN_ERRORS)
async def register_partner(body: NewPartner, svc: Admin) -> IssuedView:
    """Register a partner: its id, first key and signing secret, shown once."""
    intake = svc.intake
    try:
        issued = await svc.partners.register(
            svc.runtime.pool,
            intake.clock,
            intake.source,
            name=body.name,
            rate_per_s=body.rate_per_s,
            burst=body.burst,
            callback_url=body.callback_url,
        )
    except _FAILS as exc:
        raise _problem(exc) from None
    return IssuedView.issued(issued)


@admin.get("", response_model=list[PartnerView], responses=ADMIN_ERRORS)
async def list_partners(svc: Admin) -> list[PartnerView]:
    """Every partner, with how many of its keys are valid now (never the keys)."""
    found = await svc.partners.listing(svc.runtime.pool, svc.intake.clock)
    return [PartnerView.of(p, n) for p, n in found]


@admin.post("/{name}/rotate", response_model=IssuedView, responses=ADMIN_ERRORS)
async def rotate_partner(name: Name, svc: Admin, body: Rotation | None = None) -> IssuedView:
    """A new key (and with `secret`, a new signing secret); the current ones stay valid
    for the overlap."""
    rotation = body or Rotation()
    try:
        issued = await svc.partners.rotate(
            svc.runtime.pool,
            svc.intake.clock,
            svc.intake.source,
            name,
            overlap=timedelta(hours=rotation.overlap_hours),
            secret=rotation.secret,
        )
    except _FAILS as exc:
        raise _problem(exc) from None
    return IssuedView.issued(issued)


@admin.post("/{name}/revoke", response_model=PartnerView, responses=ADMIN_ERRORS)
async def revoke_partner(name: Name, svc: Admin) -> PartnerView:
    """The partner is inactive: every key of it is refused at once, no callbacks."""
    try:
        partner = await svc.partners.revoke(
            svc.runtime.pool, svc.intake.clock, svc.intake.source, name
        )
    except _FAILS as exc:
        raise _problem(exc) from None
    return PartnerView.of(partner)


@admin.patch("/{name}", response_model=PartnerView, responses=ADMIN_ERRORS)
async def change_partner(name: Name, body: PartnerChange, svc: Admin) -> PartnerView:
    """Change the rate limit and/or the callback URL."""
    changes: dict[str, Any] = {"rate_per_s": body.rate_per_s, "burst": body.burst}
    if "callback_url" in body.model_fields_set:
        changes["callback_url"] = body.callback_url
    try:
        partner = await svc.partners.change(
            svc.runtime.pool, svc.intake.clock, svc.intake.source, name, **changes
        )
    except _FAILS as exc:
        raise _problem(exc) from None
    return PartnerView.of(partner)


OWN_ERRORS = answers(
    {
        400: "a malformed URL (the field is named)",
        401: "a missing or wrong signature, or a timestamp outside ±5 minutes",
        403: "not a partner key, or one revoked or expired",
        429: "over the partner's rate limit; see Retry-After",
    }
)


async def _set_callback(svc: IntakeService, partner_id: str, url: str | None) -> CallbackView:
    try:
        partner = await svc.partners.change(
            svc.runtime.pool,
            svc.intake.clock,
            svc.intake.source,
            partner_id,
            callback_url=url,
            by_id=True,
        )
    except _FAILS as exc:
        raise _problem(exc) from None
    return CallbackView(partner_id=partner.partner_id, url=partner.callback_url)


@own.put("/callback", response_model=CallbackView, responses=OWN_ERRORS)
async def put_callback(body: CallbackIn, svc: Service, partner_id: PartnerId) -> CallbackView:
    """Register (or replace) your one callback URL: the status of your tips goes there."""
    return await _set_callback(svc, partner_id, body.url)


@own.delete("/callback", response_model=CallbackView, responses=OWN_ERRORS)
async def delete_callback(svc: Service, partner_id: PartnerId) -> CallbackView:
    """Stop callbacks."""
    return await _set_callback(svc, partner_id, None)


@own.get("/callback", response_model=CallbackView, responses=OWN_ERRORS)
async def get_callback(svc: Service, partner_id: PartnerId) -> CallbackView:
    """Your callback URL, if any."""
    partner = await svc.partners.partner(svc.runtime.pool, partner_id)
    if partner is None:
        raise HTTPException(403, "this partner key was revoked")
    return CallbackView(partner_id=partner_id, url=partner.callback_url)


def include(app: FastAPI) -> None:
    app.include_router(admin)
    app.include_router(own)

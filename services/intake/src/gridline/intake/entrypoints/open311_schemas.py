"""The shapes of Open311 GeoReport v2 answers (JSON format), as OpenAPI schemas.

The routes declare them as response models, so what is documented is what is sent."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gridline.common.http import answers


class Open311Problem(BaseModel):
    code: int = Field(description="The HTTP status again, as the specification asks.")
    description: str = Field(description="What is wrong and how to fix it.")


def errors(codes: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """Error answers for OpenAPI: the specification's array of {code, description}."""
    return answers(codes, list[Open311Problem])


class Endpoint(BaseModel):
    specification: str
    url: str
    changeset: str
    type: str
    formats: list[str]


class Discovery(BaseModel):
    changeset: str = Field(description="The version of the catalogue in effect.")
    contact: str
    key_service: str
    endpoints: list[Endpoint]


class Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool = Field(description="Always false: no category asks for attributes yet.")
    type: str
    keywords: str = Field(description="English and Chinese names and keywords, comma-separated.")
    group: str


class ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[dict[str, Any]]


class Created(BaseModel):
    service_request_id: str
    token: str
    service_notice: str | None = Field(description="Who handles it first, English and Chinese.")
    account_id: str | None


class ServiceRequest(BaseModel):
    service_request_id: str
    status: str = Field(description="open until resolved, then closed.")
    status_notes: str | None = Field(description="Tier and state in words.")
    service_name: str
    service_code: str
    description: str | None
    agency_responsible: str | None = Field(description="The unit that holds the request now.")
    service_notice: str | None
    requested_datetime: str | None
    updated_datetime: str | None
    expected_datetime: str | None = Field(description="The current due time, local time.")
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float
    long: float
    media_url: str | None


class Token(BaseModel):
    service_request_id: str | None
    token: str

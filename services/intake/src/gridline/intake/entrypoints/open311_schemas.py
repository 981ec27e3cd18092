"""The shapes of Open311 GeoReport v2 answers (JSON format; the XML has the same fields
under the specification's element names) and of the POST form, as OpenAPI schemas.

The routes declare them as response models, so what is documented is what is sent."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from gridline.common.http import answers


class Open311Problem(BaseModel):
    code: int = Field(description="The HTTP status again, as the specification asks.")
    description: str = Field(description="What is wrong and how to fix it.")


XML_ERRORS = {
    "type": "string",
    "description": "<errors><error><code/><description/></error></errors>",
}


def errors(codes: dict[int, str], xml: bool = False) -> dict[int | str, dict[str, Any]]:
    """Error answers for OpenAPI: the specification's array of {code, description}, or its
    XML form."""
    if xml:
        return {
            code: {"description": d, "content": {"text/xml": {"schema": XML_ERRORS}}}
            for code, d in codes.items()
        }
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
    metadata: bool = Field(
        description="True when the category asks extra questions: see services/{code}."
    )
    type: str
    keywords: str = Field(description="English and Chinese names and keywords, comma-separated.")
    group: str


class AttributeValue(BaseModel):
    key: str = Field(description="What to send as the answer.")
    name: str


class Attribute(BaseModel):
    variable: bool = Field(description="False: information only, no answer is taken.")
    code: str = Field(description="Answer as attribute[CODE] (attribute[CODE][] repeated).")
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
    required: bool
    datatype_description: str | None
    order: int
    description: str
    values: list[AttributeValue] = Field(description="The choices of a list datatype.")


class ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[Attribute]


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


FORM_FIELDS = {
    "api_key": "required: the key you were issued",
    "service_code": "required: a code from services.json",
    "lat": "WGS84 latitude, decimal degrees (required with long unless an address names a place)",
    "long": "WGS84 longitude, decimal degrees (required with lat unless an address names a place)",
    "description": "what is wrong (up to 4000 characters)",
    "address_string": "the address in words; without lat/long it must be the exact name or"
    " id of a grid, community or street of the city, whose point is then used",
    "address_id": "without lat/long: the id of a grid, community or street",
    "media_url": "an http(s) URL of a photo",
    "email": "reporter's email",
    "phone": "reporter's phone",
    "first_name": "reporter's first name",
    "last_name": "reporter's last name",
    "device_id": "reporting device",
    "account_id": "reporter's account with the client",
}
POST_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["api_key", "service_code", "lat", "long"],
                    "properties": {
                        name: {
                            "type": "number" if name in ("lat", "long") else "string",
                            "description": text,
                        }
                        for name, text in FORM_FIELDS.items()
                    },
                    "patternProperties": {
                        r"^attribute\[[A-Za-z0-9_-]+\](\[\])?$": {
                            "type": "string",
                            "description": "an answer to the category's attribute CODE (see"
                            " services/{service_code}.json); a multivaluelist repeats"
                            " attribute[CODE][] once per value",
                        }
                    },
                }
            }
        },
    },
}

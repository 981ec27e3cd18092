"""The baseline for the intake benchmark: a bare FastAPI endpoint that parses the same form
and answers the same shape, with no validation, database or Kafka behind it."""

from __future__ import annotations

import uuid

from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/open311/v2/requests.json")
async def create(request: Request) -> list[dict[str, str | None]]:
    form = await request.form()
    return [
        {
            "service_request_id": str(uuid.uuid4()),
            "service_notice": str(form.get("service_code")),
            "account_id": None,
        }
    ]

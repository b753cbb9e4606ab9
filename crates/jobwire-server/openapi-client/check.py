"""Calls every operation of the API through a client generated from openapi.json.

`cargo xtask openapi-client` generates the client with openapi-python-client into
target/openapi-client/jobwire_api, starts the server binary, and runs this with the
server's URL and token: every operation is called through the generated functions and
each answer is checked to parse into the generated model it is documented as — the
successful ones and the problems (RFC 9457) alike. Exits non-zero on the first mismatch.
"""

import sys
import time

import httpx

from jobwire_api import AuthenticatedClient
from jobwire_api.api.events import stream_events, stream_job_events
from jobwire_api.api.jobs import cancel_job, get_job, list_jobs, submit_job
from jobwire_api.api.meta import get_health, get_open_api
from jobwire_api.api.services import (
    create_service,
    delete_service,
    get_service,
    list_services,
)
from jobwire_api.models import (
    CommandSpec,
    Health,
    Job,
    JobPage,
    JobStatus,
    Problem,
    Service,
    ServicePage,
    ServiceSpec,
    SubmitBody,
)
from jobwire_api.models.input_schema_type_0 import InputSchemaType0
from jobwire_api.models.submit_body_labels import SubmitBodyLabels

checked = []


def expect(what, response, status, model):
    """The answer has `status` and parses into `model`."""
    if response.status_code != status:
        sys.exit(f"{what}: status {response.status_code}, not {status}: {response.content!r}")
    if model is not None and not isinstance(response.parsed, model):
        sys.exit(f"{what}: parsed as {type(response.parsed).__name__}, not {model.__name__}")
    checked.append(what)
    return response.parsed


class Headers(Exception):
    """Raised once an endless answer's head is in: its status, for the check."""

    def __init__(self, status, content_type):
        super().__init__(status)
        self.status = status
        self.content_type = content_type


def head_only(response):
    raise Headers(response.status_code, response.headers.get("content-type", ""))


def main(url, token):
    client = AuthenticatedClient(base_url=url, token=token, timeout=httpx.Timeout(30.0))
    no_token = AuthenticatedClient(base_url=url, token="wrong")

    health = expect("getHealth", get_health.sync_detailed(client=client), 200, Health)
    assert health.status == "ok"
    expect("getOpenApi", get_open_api.sync_detailed(client=client), 200, None)

    page = expect("listServices", list_services.sync_detailed(client=client), 200, ServicePage)
    assert any(s.name == "echo" for s in page.items), page
    expect("getService", get_service.sync_detailed("echo", client=client), 200, Service)
    missing = expect("getService (missing)", get_service.sync_detailed("nope", client=client), 404, Problem)
    assert missing.code == "not_found", missing

    schema = InputSchemaType0.from_dict(
        {"type": "object", "properties": {"n": {"type": "number"}}, "required": ["n"]}
    )
    spec = ServiceSpec(name="copy", command=CommandSpec(program="cat"), input_schema=schema)
    created = expect("createService", create_service.sync_detailed(client=client, body=spec), 201, Service)
    again = expect("createService (taken)", create_service.sync_detailed(client=client, body=spec), 409, Problem)
    assert again.code == "conflict", again

    body = SubmitBody(input_={"n": 2}, labels=SubmitBodyLabels.from_dict({"run": "generated"}))
    job = expect(
        "submitJob",
        submit_job.sync_detailed("copy", client=client, body=body, prefer="wait=10"),
        200,
        Job,
    )
    assert job.status == JobStatus.SUCCEEDED and job.output == {"n": 2}, job
    refused = expect(
        "submitJob (invalid)",
        submit_job.sync_detailed("copy", client=client, body=SubmitBody(input_={"n": "two"})),
        422,
        Problem,
    )
    assert refused.errors and refused.errors[0].pointer == "/n", refused
    unauthorized = expect(
        "submitJob (no token)", submit_job.sync_detailed("copy", client=no_token, body=body), 401, Problem
    )
    assert unauthorized.code == "unauthorized", unauthorized

    expect("getJob", get_job.sync_detailed(job.id, client=client), 200, Job)
    expect("getJob (missing)", get_job.sync_detailed("job_nope", client=client), 404, Problem)
    jobs = expect("listJobs", list_jobs.sync_detailed(client=client, label="run:generated"), 200, JobPage)
    assert [j.id for j in jobs.items] == [job.id], jobs

    slow = expect(
        "submitJob (sleep)",
        submit_job.sync_detailed(
            "sleep", client=client, body=SubmitBody(input_={"duration_seconds": 60})
        ),
        202,
        Job,
    )
    cancelled = expect("cancelJob", cancel_job.sync_detailed(slow.id, client=client), 200, Job)
    assert cancelled.status == JobStatus.CANCELLED, cancelled

    # A finished job's events: the whole stream from its start, then 204 past its done.
    events = stream_job_events.sync_detailed(job.id, client=client)
    if events.status_code != 200 or b"event: done" not in events.content:
        sys.exit(f"streamJobEvents: {events.status_code} {events.content!r}")
    checked.append("streamJobEvents")
    last = [line for line in events.content.decode().splitlines() if line.startswith("id:")][-1]
    past_done = stream_job_events.sync_detailed(
        job.id, client=client, last_event_id=last.split(":", 1)[1].strip()
    )
    expect("streamJobEvents (past done)", past_done, 204, None)

    # Every event of the tenant: an endless stream, so only its head is read.
    endless = AuthenticatedClient(
        base_url=url, token=token, httpx_args={"event_hooks": {"response": [head_only]}}
    )
    try:
        stream_events.sync_detailed(client=endless)
        sys.exit("streamEvents: the answer ended")
    except Headers as head:
        if head.status != 200 or not head.content_type.startswith("text/event-stream"):
            sys.exit(f"streamEvents: {head.status} {head.content_type}")
    checked.append("streamEvents")

    expect("deleteService", delete_service.sync_detailed(created.id, client=client), 204, None)
    gone = expect(
        "submitJob (deleted service)", submit_job.sync_detailed(created.id, client=client, body=body), 410, Problem
    )
    assert gone.code == "gone", gone
    print(f"the generated client called {len(checked)} operations and variants: {', '.join(checked)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

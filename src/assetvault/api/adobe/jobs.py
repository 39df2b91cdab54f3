"""/adobe/assets/jobs: the status and result of the Author API's asynchronous jobs."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from assetvault.api.adobe.common import READ_ERRORS, json_response, read
from assetvault.api.adobe.schemas import JobResult, JobState
from assetvault.api.deps import services
from assetvault.api.negotiation import JSON_TYPES, negotiate
from assetvault.auth.models import Principal
from assetvault.errors import NotFound

router = APIRouter(prefix="/adobe/assets", tags=["Assets"])


@router.get(
    "/jobs/{jobId}/status",
    operation_id="getJobStatus",
    summary="Get the status of an asynchronous job",
    response_model=JobState,
    responses={303: {"description": "Done; the result is at Location"}, **READ_ERRORS},
)
async def job_status(
    request: Request,
    jobId: str,
    _: Principal = Depends(read),
) -> Response:
    status = await services(request).assets.job_status(jobId)
    if status.done:
        negotiate(request, JSON_TYPES)
        return Response(status_code=303, headers={"Location": f"/adobe/assets/jobs/{jobId}/result"})
    response = json_response(request, {"jobId": jobId, "state": status.state})
    response.headers["Retry-After"] = "1"
    return response


@router.get(
    "/jobs/{jobId}/result",
    operation_id="getJobResult",
    summary="Get the result of a finished asynchronous job",
    response_model=JobResult,
    responses=READ_ERRORS,
)
async def job_result(
    request: Request,
    jobId: str,
    _: Principal = Depends(read),
) -> Response:
    status = await services(request).assets.job_status(jobId)
    if not status.done:
        raise NotFound(f"job {jobId} has no result yet; it is {status.state}")
    errors = []
    if status.error:
        errors.append(
            {
                "type": "about:blank",
                "title": "Job failed",
                "status": 500,
                "detail": status.error,
                "instance": f"/adobe/assets/jobs/{jobId}",
            }
        )
    return json_response(request, {"jobId": jobId, "state": status.state, "errors": errors})

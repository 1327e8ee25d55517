"""What every route of the service shares: the engine dependency and the streaming headers.

Both :mod:`.app` (``/generate``, ``/health``) and :mod:`.openai_compat` (``/v1/...``) import
these from here, so neither route module imports the other.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from course_utils.serving.engine import Engine

# Server-sent events must reach the client as they are written: no caching, and no buffering
# by a reverse proxy (nginx honours X-Accel-Buffering).
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def get_engine(request: Request) -> Engine:
    """The app's engine (a FastAPI dependency): built in the app's lifespan, one per app."""
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(get_engine)]

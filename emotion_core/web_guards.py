"""The app's guards around Gradio, other than the upload route (upload_route.py): which pages are open, and
which uploads the requests waiting in the queue name."""
from __future__ import annotations

import re
from pathlib import Path

from .uploads import Uploads

HEARTBEAT = re.compile(r"/heartbeat/([^/]+)/?$")  # Gradio's heartbeat stream: GET <api prefix>/heartbeat/<session hash>


class PageHeartbeats:
    """A page (a browser tab, a gradio_client Client) is open while its Gradio heartbeat stream is connected:
    tells `uploads` when each opens and closes, so that a page's clip is kept exactly while the page is open."""

    def __init__(self, app, uploads: Uploads):
        self.app, self.uploads = app, uploads

    async def __call__(self, scope, receive, send):
        match = HEARTBEAT.search(scope["path"]) if scope["type"] == "http" and scope.get("method") == "GET" else None
        if match is None:
            return await self.app(scope, receive, send)
        page = match.group(1)
        self.uploads.page_opened(page)
        try:
            await self.app(scope, receive, send)
        finally:
            self.uploads.page_closed(page)


def queued_paths(blocks) -> set[Path]:
    """Every file path named by a request Gradio has accepted and not finished (waiting in its queue or
    running). Raises RuntimeError if the queue changed while it was read."""
    paths: set[Path] = set()

    def collect(value):
        if isinstance(value, dict):
            if isinstance(value.get("path"), str) and "\0" not in value["path"]:
                paths.add(Path(value["path"]))
            for v in value.values():
                collect(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                collect(v)

    queue = getattr(blocks, "_queue", None)
    for event in list(getattr(queue, "event_ids_to_events", {}).values()):
        collect(getattr(getattr(event, "data", None), "data", None))
    return paths

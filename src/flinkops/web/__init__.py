"""The fleet web page (``flinkops ui``): server-rendered HTML over ``flinkops.service.fleet``.

``flinkops.web.app.FleetPage`` builds the aiohttp application: the overview of every deployment and session job,
a detail page per resource, and the actions (savepoint, suspend, resume, rollback) behind a confirmation. Pages
work without JavaScript; ``static/refresh.js`` (written here, a few lines) refreshes the overview in place.
Templates are Jinja2 files shipped as package data (``templates/``); no CDN, no front-end build.
"""

from __future__ import annotations

__all__: list[str] = []

"""Rendering: the templates (every value escaped), the links into Airflow's UI, and a workflow's form as fields."""

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from usergroup.interfaces.ui.csrf import csrf_token

UI = "/ui"  # where the pages live in the plugin's app
# Framed only by Airflow's own pages (another site framing them could make a click act), never cached, never sniffed.
HEADERS = {"Content-Security-Policy": "frame-ancestors 'self'", "X-Frame-Options": "SAMEORIGIN",
           "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


@cache
def templates() -> Environment:
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["when"] = when
    env.filters["duration"] = duration
    return env


def page(request: Request, template: str, status_code: int = 200, headers: dict[str, str] | None = None,
         **context: Any) -> HTMLResponse:
    app = request.scope.get("root_path", "")  # the plugin's prefix, /orchestrator
    airflow = app.rsplit("/", 1)[0]  # Airflow's base path
    html = templates().get_template(template).render(
        ui=app + UI, api=app + "/api", airflow=airflow, csrf=csrf_token(request),
        quote=lambda v: quote(str(v), safe=""), query=urlencode, **context)
    return HTMLResponse(html, status_code=status_code, headers={**HEADERS, **(headers or {})})


def when(value: datetime | str | None) -> str:
    if not value:  # none yet (a pending step)
        return ""
    value = datetime.fromisoformat(value) if isinstance(value, str) else value
    return value.strftime("%Y-%m-%d %H:%M:%S")


def duration(step: dict[str, Any]) -> str:
    if not step.get("started") or not step.get("executed"):
        return ""
    started, done = (datetime.fromisoformat(v) if isinstance(v, str) else v
                     for v in (step["started"], step["executed"]))
    return f"{(done - started).total_seconds():.2f} s"

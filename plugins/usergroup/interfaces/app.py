"""orchestrator-core's REST API for our products and workflows: a FastAPI app the plugin mounts at /orchestrator,
built on first use (the plugin is loaded by every Airflow process; only the api-server serves it)."""

from functools import cached_property


class LazyApp:
    """An ASGI app that builds the real one on its first request."""

    @cached_property
    def app(self):
        from usergroup.interfaces.routes import create_app

        return create_app()

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)


api = LazyApp()

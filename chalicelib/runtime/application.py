"""The Chalice application object, safe for the local stack's concurrent requests.

Chalice keeps the request being handled in `app.current_request`, one attribute per process:
right in Lambda (one request at a time), wrong in a threaded server. Here it is per thread. The
one function answers both doors' events (chalicelib/runtime/function_url.py).
"""
from __future__ import annotations
import threading

from chalice import Chalice

from chalicelib.runtime import function_url, observe
from chalicelib.runtime.config import Settings


class RegistryApp(Chalice):
    _per_thread = threading.local()
    _function_url_routes = None

    def __call__(self, event, context):
        """An event of either door: the REST API's (Chalice's own), or a function URL's."""
        if function_url.is_function_url_event(event):
            if self._function_url_routes is None:
                self._function_url_routes = function_url.RouteMatcher(self.routes)
            return function_url.handle(self, self._function_url_routes, event, context)
        return self.answer_rest_event(event, context)

    def answer_rest_event(self, event, context):
        return super().__call__(event, context)

    @property
    def current_request(self):
        return getattr(self._per_thread, "request", None)

    @current_request.setter
    def current_request(self, value):
        self._per_thread.request = value

    @property
    def lambda_context(self):
        return getattr(self._per_thread, "lambda_context", None)

    @lambda_context.setter
    def lambda_context(self, value):
        self._per_thread.lambda_context = value


def create_app() -> RegistryApp:
    # Chalice would otherwise take the logger named after the app ("dockless", every module's
    # parent here), set it to ERROR and add a stdout handler of its own: our warnings and the
    # local stack's own log lines would vanish. In Lambda the runtime's root handler writes them.
    app = RegistryApp(app_name="dockless", configure_logs=False)
    # Chalice applies this list to responses: one whose Content-Type is listed is base64-encoded
    # and refused (400) unless the request's Accept matches, which would refuse a blob HEAD
    # (application/octet-stream, no body) to every client that does not Accept it. No response
    # here is binary: blob bytes leave through presigned URLs. Request bodies are all base64 at the
    # front door (spec.GATEWAY_BINARY_MEDIA_TYPES), and Chalice decodes them by the event's own flag.
    app.api.binary_types = []
    if Settings.from_environ().in_lambda:
        observe.emit_to_stdout()
    return app

"""The Chalice application object, safe for the local stack's concurrent requests.

Chalice keeps the request being handled in `app.current_request`, one attribute per process:
right in Lambda (one request at a time), wrong in a threaded server. Here it is per thread.
"""
from __future__ import annotations
import threading

from chalice import Chalice

from chalicelib.runtime import observe
from chalicelib.runtime.config import Settings


class RegistryApp(Chalice):
    _per_thread = threading.local()

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

"""A webhook receiver on loopback, as a team's deploy pipeline runs one: it verifies each delivery
as the Standard Webhooks specification tells a receiver to (its own code, not the registry's:
the signed content is "<webhook-id>.<webhook-timestamp>.<body>", HMAC-SHA256 keyed with the
base64-decoded secret after "whsec_", any one of the space-separated "v1,<base64>" signatures
matching, the timestamp within five minutes), and keeps what arrived in order. `mode` makes it a
bad target: "500" answers 500, "redirect" answers 302 elsewhere, "stall" never answers in time,
"flood" answers 200 with a body that does not end."""
import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional

TOLERANCE_SECONDS = 300


def verified(secrets: List[str], headers, body: bytes) -> bool:
    message_id, timestamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    offered = (headers.get("webhook-signature") or "").split(" ")
    if not message_id or not timestamp or abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        expected = base64.b64encode(hmac.new(key, f"{message_id}.{timestamp}.".encode() + body,
                                             hashlib.sha256).digest()).decode()
        if any(part.startswith("v1,") and hmac.compare_digest(part[3:], expected) for part in offered):
            return True
    return False


class Receiver:
    def __init__(self):
        self.secrets: List[str] = []
        self.mode: Optional[str] = None
        self.received = []  # (headers, event) of each verified delivery, in arrival order
        self.refused = []  # the headers of deliveries whose signature did not verify
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.attempts += 1
                mode = receiver.mode
                if mode == "stall":
                    time.sleep(5)
                if mode == "500":
                    return self._send(500, b"down for maintenance")
                if mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                if not verified(receiver.secrets, headers, body):
                    receiver.refused.append(headers)
                    return self._send(401, b"bad signature")
                receiver.received.append((headers, json.loads(body)))
                if mode == "flood":
                    self.send_response(200)
                    self.end_headers()
                    try:
                        for _ in range(1024):
                            self.wfile.write(b"x" * 65536)
                    except OSError:
                        pass
                    return
                self._send(204, b"")

            def _send(self, status, body):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/registry"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def events(self, kind: Optional[str] = None) -> list:
        return [event for _, event in self.received if kind is None or event["data"]["kind"] == kind]

    def close(self):
        self._server.shutdown()
        self._server.server_close()

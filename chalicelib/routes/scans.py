"""What is inside an image and which advisories affect it (chalicelib/scanning), and the
advisories a registry knows and a namespace accepts.

    GET    /dockless/v1/<name>/scans/<reference>                   a tag's or digest's report: status, SBOM,
                                                                   packages, vulnerabilities, summary
    POST   /dockless/admin/v1/advisories                           {"advisories": [OSV …], "rematch"?: bool}
    GET    /dockless/admin/v1/accepted-risks/<namespace>           {advisory id: {"until", "reason", "by", "at"}}
    PUT    /dockless/admin/v1/accepted-risks/<namespace>/<id>      {"until": "YYYY-MM-DD", "reason"}
    DELETE /dockless/admin/v1/accepted-risks/<namespace>/<id>
"""
from __future__ import annotations
import datetime

from chalicelib.oci import errors, validate
from chalicelib.oci.errors import RegistryError
from chalicelib.policy import vulnerabilities
from chalicelib.policy.settings import SettingsService
from chalicelib.routes.respond import empty, json_response


def _service(backend):
    from chalicelib.scanning.service import ScanService  # its readers load only where scans are asked for
    return ScanService(backend)


def show(call, name, reference):
    validate.reference(reference)
    return json_response(_service(call.backend).report(name, reference))


def import_advisories(call):
    document = call.json_object(errors.ADMIN_INVALID)
    rematch = document.get("rematch", True)
    if not isinstance(rematch, bool):
        raise RegistryError(errors.ADMIN_INVALID, "rematch is true or false")
    return json_response(_service(call.backend).import_advisories(document.get("advisories"), rematch))


def list_accepted(call, namespace):
    return json_response({"namespace": namespace, "accepted": SettingsService(call.backend).accepted_risks(namespace)})


def accept(call, namespace, advisory_id):
    document = call.json_object(errors.ADMIN_INVALID)
    reason = document.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > vulnerabilities.REASON_MAX:
        raise RegistryError(errors.ADMIN_INVALID, f"reason is a text of 1 to {vulnerabilities.REASON_MAX} characters")
    try:
        until = datetime.date.fromisoformat(str(document.get("until")))
    except ValueError:
        raise RegistryError(errors.ADMIN_INVALID, "until is a date (YYYY-MM-DD)") from None
    risk = SettingsService(call.backend).accept_risk(namespace, advisory_id, until, reason.strip())
    return json_response({"namespace": namespace, "advisory": advisory_id, **risk})


def withdraw(call, namespace, advisory_id):
    SettingsService(call.backend).withdraw_risk(namespace, advisory_id)
    return empty(204)

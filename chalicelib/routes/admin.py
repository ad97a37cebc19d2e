"""The administration API (`/dockless/admin/v1/`), for registry admins (token scope
`registry:admin:*`, granted only to admin principals). JSON in and out.

    GET    /dockless/admin/v1/principals                          users, robots and teams
    POST   /dockless/admin/v1/principals                          {"name", "kind", "admin"?}
    DELETE /dockless/admin/v1/principals/<name>                   revokes its credentials too
    GET    /dockless/admin/v1/principals/<name>/tokens            its credentials, never secrets
    POST   /dockless/admin/v1/principals/<name>/tokens            {"expires_in_days"?, "description"?}
                                                                  -> {"token"} shown once
    DELETE /dockless/admin/v1/tokens/<id>                         revoke
    PUT    /dockless/admin/v1/teams/<team>/members/<name>         add to a team
    DELETE /dockless/admin/v1/teams/<team>/members/<name>         remove from a team
    GET    /dockless/admin/v1/grants?resource=                    grants on a namespace or repository
    PUT    /dockless/admin/v1/grants                              {"resource", "subject", "role"}
    DELETE /dockless/admin/v1/grants?resource=&subject=
    GET    /dockless/admin/v1/audit?namespace=|repository=&actor=&since=&until=
                                                                  events, oldest first
"""
import datetime

from chalicelib import audit, errors, spec
from chalicelib.auth.service import AuthService
from chalicelib.errors import RegistryError
from chalicelib.meta.models import Credential, Grant, Principal, TeamMember
from chalicelib.routes.request import json_object, query
from chalicelib.routes.respond import empty, json_response
from chalicelib.services import services


# One audit query reads one partition per shard and day: a bound keeps it inside the timeout.
AUDIT_QUERY_MAX_DAYS = 31


def _when(value):
    return value.isoformat() if value else None


def list_principals(request):
    principals = sorted(Principal.scan(), key=lambda p: p.name)
    members = {}
    for membership in TeamMember.scan():
        members.setdefault(membership.team, []).append(membership.member)
    return json_response({"principals": [
        {"name": p.name, "kind": p.kind, "admin": p.admin, "created_at": _when(p.created_at),
         **({"members": sorted(members.get(p.name, []))} if p.kind == "team" else {})}
        for p in principals]})


def create_principal(request):
    document = json_object(request, errors.ADMIN_INVALID)
    principal = AuthService(services()).create_principal(document.get("name"), document.get("kind", "user"),
                                                         bool(document.get("admin")))
    return json_response({"name": principal.name, "kind": principal.kind, "admin": principal.admin}, status=201)


def delete_principal(request, principal):
    AuthService(services()).delete_principal(principal)
    return empty(204)


def list_tokens(request, principal):
    AuthService(services()).principal(principal)
    credentials = sorted(Credential.scan(Credential.principal == principal), key=lambda c: c.created_at)
    return json_response({"tokens": [
        {"id": c.credential_id, "kind": c.kind, "description": c.description, "created_at": _when(c.created_at),
         "expires_at": c.expires_at, "last_used_at": _when(c.last_used_at), "revoked": c.revoked}
        for c in credentials]})


def create_token(request, principal):
    document = json_object(request, errors.ADMIN_INVALID)
    days = document.get("expires_in_days")
    if days is not None and (not isinstance(days, int) or isinstance(days, bool) or days <= 0):
        raise RegistryError(errors.ADMIN_INVALID, "expires_in_days is a positive whole number")
    text, credential = AuthService(services()).new_token(principal, days * 86400 if days else None,
                                                         document.get("description"))
    return json_response({"id": credential.credential_id, "token": text, "expires_at": credential.expires_at},
                         status=201)


def revoke_token(request, credential_id):
    AuthService(services()).revoke_token(credential_id)
    return empty(204)


def add_member(request, team, principal):
    AuthService(services()).set_membership(team, principal, present=True)
    return empty(204)


def remove_member(request, team, principal):
    AuthService(services()).set_membership(team, principal, present=False)
    return empty(204)


def list_grants(request):
    resource = query(request, "resource") or ""
    key = ("repo:" if "/" in resource else "ns:") + resource
    return json_response({"grants": [{"resource": resource, "subject": g.subject, "role": g.role}
                                     for g in Grant.query(key)]})


def put_grant(request):
    document = json_object(request, errors.ADMIN_INVALID)
    AuthService(services()).set_grant(str(document.get("resource", "")), str(document.get("subject", "")),
                                      str(document.get("role", "")))
    return empty(204)


def delete_grant(request):
    AuthService(services()).set_grant(query(request, "resource") or "", query(request, "subject") or "", None)
    return empty(204)


def _time(request, name: str, default):
    raw = query(request, name)
    if not raw:
        return default
    try:
        value = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise RegistryError(errors.ADMIN_INVALID, f"{name} is an ISO 8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def _audit_period(request, default_days: int) -> tuple:
    """`since` and `until` of a query that reads the audit trail (until: now; since: default_days
    before it), at most AUDIT_QUERY_MAX_DAYS apart."""
    until = _time(request, "until", services().clock())
    since = _time(request, "since", until - datetime.timedelta(days=default_days))
    if until - since > datetime.timedelta(days=AUDIT_QUERY_MAX_DAYS):
        raise RegistryError(errors.ADMIN_INVALID, f"at most {AUDIT_QUERY_MAX_DAYS} days per query")
    return since, until


def list_audit(request):
    """Events for a namespace (or one repository of it) or an actor, between since and until
    (default: the last 24 hours)."""
    since, until = _audit_period(request, default_days=1)
    repository, actor = query(request, "repository"), query(request, "actor")
    namespace = query(request, "namespace") or (repository.split("/", 1)[0] if repository else None)
    if not namespace and not actor:
        raise RegistryError(errors.ADMIN_INVALID, "give a namespace, a repository or an actor")
    events = [audit.as_dict(e) for e in audit.query(namespace, actor, since, until)
              if not repository or e.repository == repository]
    return json_response({"events": events})


def usage(request):
    """Per repository of a namespace (or all): stored bytes, blob and manifest counts, and the
    pushes and pulls between since and until (default: the last 30 days)."""
    from chalicelib import usage as usage_report
    since, until = _audit_period(request, default_days=30)
    return json_response({"since": since.isoformat(), "until": until.isoformat(),
                          "repositories": usage_report.report(query(request, "namespace"), since, until)})


def put_setting(request):
    """{"resource": "<namespace or repository>", "verified"?: bool, "auto_sign"?: bool}"""
    from chalicelib.signing.service import set_policy
    document = json_object(request, errors.ADMIN_INVALID)
    resource = document.get("resource")
    if not isinstance(resource, str) or not spec.NAME_RE.fullmatch(resource):
        raise RegistryError(errors.ADMIN_INVALID, "resource is a namespace or repository name")
    flags = {k: document.get(k) for k in ("verified", "auto_sign")}
    if any(v is not None and not isinstance(v, bool) for v in flags.values()):
        raise RegistryError(errors.ADMIN_INVALID, "verified and auto_sign are true or false")
    setting = set_policy(resource, flags["verified"], flags["auto_sign"])
    return json_response({"resource": resource, "verified": setting.verified, "auto_sign": setting.auto_sign})

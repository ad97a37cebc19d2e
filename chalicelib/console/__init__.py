"""The web console (`/ui/`): server-rendered pages of what the signed-in principal may pull, from
the same function and front door as the registry API.

    GET  /ui/signin                the sign-in form (any page shows it to a caller not signed in)
    POST /ui/signin                name + access token (what `docker login` takes) -> a session
    GET  /ui/sso                   single sign-on: to the identity provider (access/sso.py) ...
    GET  /ui/sso/callback          ... and back with its code -> a session
    GET  /ui/                      the repositories the caller may pull
    POST /ui/signout               revokes the session
    GET  /ui/repository?name=      a repository's tags and settings
    GET  /ui/tag?name=&tag=        a tag: digest, size, platforms, who pushed it, its signatures
    GET  /ui/diff?name=&from=&to=  what differs between two tags or digests (config, layers)
    GET  /ui/history?name=&tag=    a tag's history, with restore links for those who may push
    GET  /ui/restore?name=&tag=&digest=   the confirmation, naming both digests
    POST /ui/restore               restores (as `dockless restore` does)
    GET  /ui/audit?namespace=&repository=&actor=&action=&outcome=&since=&until=   admins: the trail
    GET  /ui/audit.jsonl?…         the same events, every one of the period, as JSON lines
    GET  /ui/people, POST /ui/people                 admins: principals; add a user, robot or team
    GET  /ui/principal?name=       admins: its tokens (create: the secret shown once; revoke) or members
    POST /ui/tokens, /ui/tokens/revoke, /ui/members  what those pages' forms do
    GET  /ui/grants?resource=, POST /ui/grants       admins: grants on a namespace or repository
    GET  /ui/keys?namespace=, POST /ui/keys, /ui/keys/remove   its trusted keys; admins add and remove
    GET  /ui/usage?namespace=      admins: stored bytes, quota use, cost, pushes and pulls per day
    GET  /ui/webhooks?namespace=   admins: a namespace's webhooks and their delivery logs (chalicelib/events)
    GET  /ui/console.css, /ui/console.js   the style, and the one script (copy buttons; pages work without it)

Each page is a route of the one table (routes/table.py) with its action, decided by the one
`authorize` before its handler runs, through the console's door: the credential is the session
cookie (access/session.py), a form counts only with its CSRF token, and a refusal is a page
(`refused`). The handlers here only read what they show through the registry's services and
`call.access`. Templates autoescape; the pages run no script but the console's own
file (copy buttons; reading works without it) and load nothing from elsewhere
(Content-Security-Policy `default-src 'none'; script-src 'self'`, no inline script); framing is
refused.
"""
from __future__ import annotations
import datetime
import fnmatch
import functools
import hmac
import json
import secrets
from pathlib import Path
from typing import Dict, Optional, Tuple
from urllib.parse import urlencode

from chalice import Response

from chalicelib.access import session, sso, throttle
from chalicelib.access.service import AuthService, Caller, new_credential_text
from chalicelib.lifecycle import prices, quota, usage as usage_report
from chalicelib.metadata import audit, keys, queries
from chalicelib.oci import errors, imagediff, sizes, spec, validate
from chalicelib.oci.errors import RegistryError
from chalicelib.policy import vulnerabilities
from chalicelib.policy.settings import SettingsService
from chalicelib.registry.manifests import ManifestService
from chalicelib.signing.service import SigningService, Trust, bundle_entries, cosign_entries, notation_entries

HISTORY_EVENTS = 100  # the newest events of a tag shown on its page
AUDIT_PAGE_EVENTS = 200
AUDIT_FILTERS = ("namespace", "repository", "actor", "action", "outcome", "since", "until")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
}
HERE = Path(__file__).parent


@functools.lru_cache(maxsize=1)
def _templates():
    import jinja2  # only the console's requests pay for importing it
    return jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def _page(template: str, status: int = 200, cookies=(), **context) -> Response:
    body = _templates().get_template(template).render({"caller": None, "csrf": "", **context})
    headers: Dict[str, object] = {**SECURITY_HEADERS, "Content-Type": "text/html; charset=utf-8"}
    if cookies:
        headers["Set-Cookie"] = list(cookies)
    return Response(body=body, status_code=status, headers=headers)


def _cookie(backend, name: str, value: str, max_age: int) -> str:
    return session.cookie(_secure(backend), name, value, max_age)


def _signed_in(call) -> Tuple[Caller, str]:
    """The caller the session speaks for (authorize checked it) and its forms' CSRF token."""
    return call.access.caller, session.csrf_of(session.secret(call.request))


def _signin_form(backend, status: int = 200, problem: Optional[str] = None, name: Optional[str] = None) -> Response:
    token = secrets.token_urlsafe(24)
    return _page("signin.html", status, [_cookie(backend, session.SIGNIN_COOKIE, token, 3600)], csrf=token,
                 problem=problem, name=name, sso=backend.settings.sso is not None)


def _refused(status: int, title: str, message: str, caller: Optional[Caller] = None, csrf: str = "") -> Response:
    return _page("refused.html", status, title=title, message=message, caller=caller, csrf=csrf)


def refused(request, backend, error: RegistryError) -> Response:
    """A refusal through the console's door, as a page: the sign-in form to a caller not signed
    in; otherwise what was refused, with the caller's header."""
    if error.status == 401:
        return _signin_form(backend, 401, error.message)
    access = getattr(request, "access", None)
    caller = access.caller if access is not None and access.claims else None
    csrf = session.csrf_of(session.secret(request)) if caller else ""
    said = error.message or (f"{error.error.message}: {error.detail}" if isinstance(error.detail, str)
                             else error.error.message)
    return _refused(error.status, "Not found" if error.status == 404 else "Refused", said, caller, csrf)


def signin_form(call):
    return _signin_form(call.backend)


def index(call):
    caller, csrf = _signed_in(call)
    namespaces: Dict[str, list] = {}
    for name in call.access.readable(queries.catalog()):
        namespaces.setdefault(keys.namespace_of(name), []).append(name)
    return _page("repositories.html", caller=caller, csrf=csrf, namespaces=sorted(namespaces.items()))


def repository(call, name: str):
    caller, csrf = _signed_in(call)
    shown = SettingsService(call.backend).show(name)
    applied = shown["applied"]
    changed = {**{k: dict(v, where=keys.namespace_of(name)) for k, v in shown["namespace_changes"].items()},
               **{k: dict(v, where=name) for k, v in shown["changes"].items()}}
    items = list(queries.tags(name))
    tags = [{"tag": t.tag, "digest": t.digest, "updated_at": t.updated_at,
             "immutable": any(fnmatch.fnmatchcase(t.tag, pattern) for pattern in applied["immutable_tags"])}
            for t in items]
    found = {row["tag"]: row for row in usage_report.tag_vulnerabilities(name, items)}
    for tag in tags:
        scan = found.get(tag["tag"]) or {}
        tag["vulnerabilities"] = vulnerabilities.describe(scan.get("status"), scan.get("summary"),
                                                          scan.get("complete", True))
    total = quota.total(keys.namespace_of(name))
    return _page("repository.html", caller=caller, csrf=csrf, name=name, tags=tags, settings=applied, changed=changed,
                 retention=_rules_text(applied["retention"]), stored=sizes.human(int(total.bytes or 0)),
                 quota=sizes.human(int(total.quota)) if total.quota is not None else None,
                 host=call.backend.public_url().split("://", 1)[-1], namespace=keys.namespace_of(name))


def _rules_text(rules: Optional[dict]) -> str:
    if not rules:
        return "none"
    said = [f"{rule.replace('_', ' ')} {value}" for rule, value in rules.items() if rule != "exempt" and value is not None]
    if rules.get("exempt"):
        said.append("exempt " + ", ".join(rules["exempt"]))
    return "; ".join(said) or "none"


def grouped(fingerprint: Optional[str]) -> str:
    """A fingerprint as gpg prints it: groups of four, two halves (or the key id as it is)."""
    if not fingerprint or len(fingerprint) != 40:
        return fingerprint or "unknown"
    groups = [fingerprint[i:i + 4] for i in range(0, 40, 4)]
    return " ".join(groups[:5]) + "  " + " ".join(groups[5:])


def tag_page(call, name: str):
    """One tag: its manifest (digest, type, size, platforms), who pushed it, each platform's image
    (config, layers with the command that made each), its referrers, its signatures and whether a
    key trusted now vouches for each."""
    caller, csrf = _signed_in(call)
    tag = call.query("tag") or ""
    validate.tag(tag)
    service = ManifestService(call.backend)
    digest = service.tag_digest(name, tag)
    if digest is None:
        raise RegistryError(errors.MANIFEST_UNKNOWN, message=f"{name}:{tag} names no manifest")
    manifest = service.get(name, digest)
    document = json.loads(service.body(manifest))
    size = sizes.human(sum(d["size"] for d in [document["config"], *document["layers"]])) \
        if "layers" in document else f"an index of {len(document.get('manifests', []))} manifests"
    events, _ = service.history(name, tag, 1, None, where_from=False)
    settings = SettingsService(call.backend).of(name)
    trust = Trust.of_repository(name)
    stored = SigningService(call.backend).signatures(name, digest)
    vouched = {vouch.signature.name: vouch for vouch in trust.vouches(stored, digest)}
    signatures = [{"format": "OpenPGP", "fingerprint": grouped(vouched[s.name].fingerprint if s.name in vouched
                                                               else s.signer),
                   "trusted": s.name in vouched, "identity": s.identity, "created_at": s.created_at} for s in stored]
    signatures += [dict(listed, created_at=None, fingerprint=listed["certificate"] or listed["fingerprint"]
                        or "no trusted key")
                   for listed in trust.cosign_listing(cosign_entries(call.backend, name, digest), digest)
                   + trust.bundle_listing(bundle_entries(call.backend, name, digest), digest)
                   + trust.notation_listing(notation_entries(call.backend, name, digest), digest, call.backend.clock())]
    if manifest.media_type in spec.INDEX_MEDIA_TYPES:
        images = [_image_of(service, name, child, platform)
                  for platform, child in sorted(service.platforms(name, manifest).items())]
    else:
        images = [_image_of(service, name, digest)]
    referrers, _ = service.referrers(name, digest, None, REFERRERS_SHOWN, None)
    from chalicelib.scanning import advisories
    from chalicelib.scanning.service import ScanService
    scans = [dict(image, status_text=vulnerabilities.describe(image["status"], advisories.summary(
        advisories.Finding.from_dict(f) for f in image["vulnerabilities"] if not f.get("accepted")), image["complete"]))
        for image in ScanService(call.backend).report(name, digest)["images"]]
    return _page("tag.html", scans=scans, caller=caller, csrf=csrf, name=name, tag=tag, digest=digest, size=size,
                 media_type=manifest.media_type, platforms=[image["platform"] for image in images], images=images,
                 referrers=[dict(r, size_text=sizes.human(r["size"])) for r in referrers],
                 pushed=events[0] if events else None, immutable=settings.immutable(tag), signatures=signatures,
                 host=call.backend.public_url().split("://", 1)[-1])


REFERRERS_SHOWN = 50


def _image_of(service: ManifestService, name: str, digest: str, platform: Optional[str] = None) -> dict:
    """One platform's image as the tag page shows it (the platform an index names, else its
    config's): its config's fields and its layers, or why they cannot be shown (a child a cache
    has not fetched yet, a config that is not a JSON object)."""
    try:
        config, layers = service.image(name, digest)
    except RegistryError as missing:
        return {"platform": platform or "unknown", "digest": digest,
                "missing": missing.message or missing.error.message}
    return {"platform": platform or imagediff.platform_of(config), "digest": digest, "missing": None,
            "config": imagediff.config_summary(config),
            "layers": [dict(row, size_text=sizes.human(row["size"]))
                       for row in imagediff.layer_rows(config, layers)]}


def _config_rows(changes: dict) -> list:
    """imagediff.config_changes as (field, before, after) rows: maps per key, history as lines."""
    rows = []
    for field, change in changes.items():
        if field in ("env", "labels", "exposed_ports"):
            rows.extend((f"{field} {key}", entry["from"], entry["to"]) for key, entry in change.items())
        elif field == "history":
            rows.append((field, "\n".join(change["from"]), "\n".join(change["to"])))
        else:
            rows.append((field, change["from"], change["to"]))
    return rows


def diff_page(call, name: str):
    """What differs between two tags or digests, platform by platform (the API's diff), and the
    `dockless diff` command for the files."""
    caller, csrf = _signed_in(call)
    before, after = call.query("from") or "", call.query("to") or ""
    found = ManifestService(call.backend).diff(name, before, after, may_push=call.access.holds(spec.PUSH, name))
    platforms = []
    for entry in found["platforms"]:
        both = bool(entry["from"] and entry["to"])
        layers = {kind: [dict(layer, size_text=sizes.human(layer["size"])) for layer in entry["layers"][kind]]
                  for kind in ("added", "removed", "shared")} if both else {}
        platforms.append({"platform": entry["platform"], "to": entry["to"], "both": both, "layers": layers,
                          "config": _config_rows(entry["config"]) if both else []})
    refs = [f"{name}@{r}" if r.startswith("sha256:") else f"{name}:{r}" for r in (before, after)]
    return _page("diff.html", caller=caller, csrf=csrf, name=name, diff=found, platforms=platforms,
                 command=f"dockless diff {refs[0]} {refs[1]}")


def history(call, name: str):
    """A tag's timeline, newest first, with a restore link per manifest it named (push only)."""
    caller, csrf = _signed_in(call)
    tag = call.query("tag") or ""
    validate.tag(tag)
    events, _ = ManifestService(call.backend).history(name, tag, HISTORY_EVENTS, None, where_from=False)
    return _page("history.html", caller=caller, csrf=csrf, name=name, tag=tag, events=events,
                 current=events[0]["to"] if events else None,
                 may_push=call.access.holds(spec.PUSH, name))


def restore_form(call, name: str):
    """The confirmation: what the tag names now, and what it will name."""
    caller, csrf = _signed_in(call)
    tag, digest = call.query("tag") or "", call.query("digest") or ""
    validate.tag(tag)
    validate.digest(digest)
    current = ManifestService(call.backend).tag_digest(name, tag)
    return _page("restore.html", caller=caller, csrf=csrf, name=name, tag=tag, digest=digest, current=current)


def restore(call, name: str):
    form = session.form(call.request)
    tag, digest = form.get("tag") or "", form.get("digest") or ""
    validate.tag(tag)
    validate.digest(digest)
    ManifestService(call.backend).restore(name, tag, digest=digest)
    return Response(body="", status_code=303, headers={
        **SECURITY_HEADERS, "Location": "/ui/history?" + urlencode({"name": name, "tag": tag})})


def signin(call):
    form = session.form(call.request)
    expected = session.cookies(call.request).get(session.SIGNIN_COOKIE)
    if not expected or not hmac.compare_digest(form.get("csrf", ""), expected):
        return _refused(403, "Refused", "The sign-in form expired or came from elsewhere: reload the page and sign in.")
    name, token = form.get("name", ""), form.get("token", "")
    now, address = call.backend.clock().timestamp(), audit.current().source_ip
    wait = throttle.retry_after(now, name, address)
    if wait is not None:
        refused = _signin_form(call.backend, 429, f"Too many failed sign-ins: try again in {-(-wait // 60)} minutes.",
                               name)
        refused.headers["Retry-After"] = str(wait)
        return refused
    auth = AuthService(call.backend)
    try:
        caller = auth.authenticate(token, username=name)
    except RegistryError:
        call.backend.audit.record("console.signin", outcome=audit.DENIED, actor=name[:64] or "-")
        throttle.failed(call.backend, now, name, address)
        return _signin_form(call.backend, 401, "Wrong name or token.", name)
    throttle.succeeded(caller.name)
    return Response(body="", status_code=303, headers={
        **SECURITY_HEADERS, "Location": "/ui/",
        "Set-Cookie": [_new_session(call.backend, caller, "console"), _cookie(call.backend, session.SIGNIN_COOKIE, "", 0)]})


def _new_session(backend, caller: Caller, description: str) -> str:
    """A session for `caller` (its event recorded): the Set-Cookie that holds it."""
    audit.identify(caller.name, caller.credential_id)
    secret = new_credential_text()
    AuthService(backend).store_credential(caller.name, secret, kind="session", lifetime_seconds=session.SESSION_SECONDS,
                                          description=description, parent=caller.credential)
    backend.audit.record("console.signin", **({"grant": "sso"} if description != "console" else {}))
    return _cookie(backend, session.SESSION_COOKIE, secret, session.SESSION_SECONDS)


def _sso_refused(call, failure: sso.Failed, status: int = 401) -> Response:
    call.backend.audit.record("console.signin", outcome=audit.DENIED, actor="-", grant="sso", reason=failure.reason)
    refused = _signin_form(call.backend, status, failure.said)
    refused.headers["Set-Cookie"].append(session.flow_cookie(_secure(call.backend), "", 0))
    return refused


def _secure(backend) -> bool:
    return backend.public_url().startswith("https://")


def sso_begin(call):
    """To the identity provider, the sign-in's state, nonce and PKCE verifier kept in this browser."""
    try:
        location, flow = sso.begin(call.backend)
    except sso.Failed as failure:
        return _sso_refused(call, failure, 404 if call.backend.settings.sso is None else 503)
    return Response(body="", status_code=302, headers={
        **SECURITY_HEADERS, "Location": location, "Cache-Control": "no-store",
        "Set-Cookie": [session.flow_cookie(_secure(call.backend), flow.text(), sso.FLOW_SECONDS)]})


def sso_callback(call):
    """Back from the identity provider: the person it proves gets a session. The answer is a page
    that moves on to /ui/ by itself: the session cookie is SameSite=Strict, and a browser sends it
    only on a navigation that starts on this site, which the provider's redirect did not."""
    query = {name: str(call.query(name) or "") for name in ("code", "state", "error")}
    flow = sso.Flow.of(session.cookies(call.request).get(session.FLOW_COOKIE))
    try:
        caller = sso.finish(call.backend, flow, query)
    except sso.Failed as failure:
        return _sso_refused(call, failure)
    page = _page("signed-in.html", name=caller.name, teams=sorted(caller.teams or ()))
    page.headers["Set-Cookie"] = [_new_session(call.backend, caller, "console (single sign-on)"),
                                  session.flow_cookie(_secure(call.backend), "", 0)]
    page.headers["Cache-Control"] = "no-store"
    return page


def signout(call):
    AuthService(call.backend).revoke_token(call.access.caller.credential_id)
    call.backend.audit.record("console.signout")
    return Response(body="", status_code=303, headers={
        **SECURITY_HEADERS, "Location": "/ui/signin",
        "Set-Cookie": [_cookie(call.backend, session.SESSION_COOKIE, "", 0)]})


def _audit(call) -> Tuple[Caller, str, Dict[str, str], list]:
    """The filters and the events they select (oldest first); authorize let only admins here."""
    caller, csrf = _signed_in(call)
    filters = {name: call.query(name) or "" for name in AUDIT_FILTERS}
    since, until = audit.period(call.query, call.backend.clock(), default_days=1)
    namespace = filters["namespace"] or (keys.namespace_of(filters["repository"]) if filters["repository"] else "")
    if not namespace and not filters["actor"]:
        namespace = audit.REGISTRY_NAMESPACE  # the registry's own events (administration, collection)
    events = [audit.as_dict(e) for e in audit.query(namespace or None, filters["actor"] or None, since, until)
              if all(not filters[name] or (getattr(e, name) or "") == filters[name]
                     for name in ("repository", "action", "outcome"))]
    return caller, csrf, filters, events


def audit_page(call):
    caller, csrf, filters, events = _audit(call)
    shown = list(reversed(events))[:AUDIT_PAGE_EVENTS]
    query = {k: v for k, v in filters.items() if v}
    older = None
    if len(events) > AUDIT_PAGE_EVENTS:
        last = datetime.datetime.fromisoformat(shown[-1]["time"]) - datetime.timedelta(microseconds=1)
        older = urlencode({**query, "until": last.isoformat()})
    return _page("audit.html", caller=caller, csrf=csrf, filters=filters, events=shown, query=urlencode(query),
                 older=older)


def audit_export(call):
    _, _, _, events = _audit(call)
    return Response(body="".join(json.dumps(event, sort_keys=True) + "\n" for event in events), status_code=200,
                    headers={**SECURITY_HEADERS, "Content-Type": "application/x-ndjson",
                             "Content-Disposition": 'attachment; filename="audit.jsonl"'})


def _posted(call) -> Tuple[Caller, str, Dict[str, str]]:
    """A form's caller, CSRF token and fields (authorize checked the token)."""
    return (*_signed_in(call), session.form(call.request))


def _see_other(path: str, **query) -> Response:
    return Response(body="", status_code=303, headers={**SECURITY_HEADERS,
                                                       "Location": path + ("?" + urlencode(query) if query else "")})


def people(call):
    caller, csrf = _signed_in(call)
    return _page("people.html", caller=caller, csrf=csrf, principals=AuthService(call.backend).principals())


def add_principal(call):
    _, _, form = _posted(call)
    principal = AuthService(call.backend).create_principal(form.get("name", ""), form.get("kind", ""))
    return _see_other("/ui/principal", name=principal.name)


def principal_page(call):
    caller, csrf = _signed_in(call)
    auth = AuthService(call.backend)
    principal = auth.principal(call.query("name") or "")
    members = next((m for p, m in auth.principals() if p.name == principal.name), []) \
        if principal.kind == "team" else []
    tokens = auth.credentials_of(principal.name) if principal.kind != "team" else []
    return _page("principal.html", caller=caller, csrf=csrf, principal=principal, members=members, tokens=tokens)


def create_token(call):
    caller, csrf, form = _posted(call)
    days = form.get("expires_days", "").strip()
    if days and (not days.isdigit() or int(days) <= 0):
        raise RegistryError(errors.ADMIN_INVALID, "expires after a positive whole number of days, or never")
    text, _ = AuthService(call.backend).new_token(form.get("principal", ""), int(days) * 86400 if days else None,
                                                  form.get("description") or None)
    return _page("token.html", caller=caller, csrf=csrf, principal=form["principal"], token=text,
                 host=call.backend.public_url().split("://", 1)[-1])


def revoke_token(call):
    _, _, form = _posted(call)
    AuthService(call.backend).revoke_token(form.get("id", ""))
    return _see_other("/ui/principal", name=form.get("principal", ""))


def set_member(call):
    _, _, form = _posted(call)
    team = form.get("team", "")
    AuthService(call.backend).set_membership(team, form.get("member", ""), form.get("present") == "1")
    return _see_other("/ui/principal", name=team)


def grants(call):
    caller, csrf = _signed_in(call)
    resource = call.query("resource") or ""
    if not spec.NAME_RE.fullmatch(resource):
        raise RegistryError(errors.ADMIN_INVALID, "give a namespace (team) or a repository (team/app)")
    return _page("grants.html", caller=caller, csrf=csrf, resource=resource,
                 grants=AuthService(call.backend).grants_on(resource))


def set_grant(call):
    _, _, form = _posted(call)
    resource = form.get("resource", "")
    AuthService(call.backend).set_grant(resource, form.get("subject", ""), form.get("role") or None)
    return _see_other("/ui/grants", resource=resource)


def _keys_page(call, caller: Caller, csrf: str, namespace: str, warnings=()) -> Response:
    found = [{"fingerprint": key.fingerprint, "grouped": grouped(key.fingerprint), "algorithm": key.algorithm,
              "length": key.length, "uids": json.loads(key.uids), "created": key.created, "expires": key.expires}
             for key in SigningService(call.backend).keys(namespace)]
    return _page("keys.html", caller=caller, csrf=csrf, namespace=namespace, keys=found, warnings=list(warnings),
                 keys_url=f"{call.backend.public_url()}/keys/{namespace}/KEYS")


def keys_page(call):
    """The keys trusted for a namespace (public, as /keys/<namespace>/KEYS is); admins add and remove."""
    caller, csrf = _signed_in(call)
    return _keys_page(call, caller, csrf, validate.namespace(call.query("namespace") or ""))


def add_keys(call):
    caller, csrf, form = _posted(call)
    namespace = validate.namespace(form.get("namespace", ""))
    _, warnings = SigningService(call.backend).add_keys(namespace, form.get("armored", ""))
    return _keys_page(call, caller, csrf, namespace, warnings)


def remove_key(call):
    _, _, form = _posted(call)
    namespace = validate.namespace(form.get("namespace", ""))
    SigningService(call.backend).remove_key(namespace, validate.fingerprint(form.get("fingerprint", "")))
    return _see_other("/ui/keys", namespace=namespace)


CHART_HEIGHT, CHART_STEP, BAR_WIDTH = 120, 14, 160


def usage_page(call):
    """Admins: what each namespace and repository stores, against its quota, what it costs, and
    its pushes and pulls per day, drawn as SVG here (no script, nothing fetched)."""
    caller, csrf = _signed_in(call)
    namespace = call.query("namespace") or ""
    if namespace:
        validate.namespace(namespace)
    since, until = audit.period(call.query, call.backend.clock(), default_days=30)
    found = usage_report.report(namespace or None, since, until, call.backend.settings.door)
    biggest = max([row["stored_bytes"] for row in found["repositories"]] + [1])
    repositories = [dict(row, stored=sizes.human(row["stored_bytes"]), bar=round(row["stored_bytes"] * BAR_WIDTH / biggest))
                    for row in found["repositories"]]
    namespaces = [dict(row, stored=sizes.human(row["stored_bytes"]), freed=sizes.human(row["gc_freed_bytes"]),
                       quota=sizes.human(row["quota_bytes"]) if row["quota_bytes"] else None,
                       percent=row["used_percent"]) for row in found["namespaces"]]
    most = max([day["pushes"] + day["pulls"] for day in found["days"]] + [1])
    bars = [{"day": day["day"], "x": number * CHART_STEP, "pull_count": day["pulls"], "push_count": day["pushes"],
             "pulls": round(day["pulls"] * CHART_HEIGHT / most), "pushes": round(day["pushes"] * CHART_HEIGHT / most)}
            for number, day in enumerate(found["days"])]
    bucket = found["bucket"]
    bucket.update({key: sizes.human(bucket[field]) if bucket[field] is not None else None
                   for key, field in (("before", "bytes_before"), ("after", "bytes_after"), ("freed", "gc_freed_bytes"))})
    return _page("usage.html", caller=caller, csrf=csrf, namespace=namespace, since=since.isoformat(),
                 until=until.isoformat(), prices_as_of=prices.PRICES_AS_OF, namespaces=namespaces,
                 repositories=repositories, bucket=bucket,
                 chart={"width": max(len(bars), 1) * CHART_STEP + 40, "height": CHART_HEIGHT, "step": CHART_STEP,
                        "bars": bars, "most": most})


WEBHOOK_LOG_ROWS = 20  # the newest deliveries shown per webhook


def webhooks_page(call):
    """Admins: a namespace's webhooks, each with its newest deliveries: status, the target's
    answer, attempts (what `dockless webhook deliveries` prints)."""
    from chalicelib.events import delivery
    from chalicelib.events.webhooks import WebhookService, describe
    caller, csrf = _signed_in(call)
    namespace = call.query("namespace") or ""
    hooks = []
    if namespace:
        validate.namespace(namespace)
        now = call.backend.clock().timestamp()
        for webhook in WebhookService(call.backend).list(namespace):
            logged = delivery.deliveries(webhook.webhook_id, WEBHOOK_LOG_ROWS)
            hooks.append(dict(describe(webhook, now), deliveries=[{
                "queued": delivery.queued_time(d).isoformat()[:19],
                "type": d.event_type, "subject": d.subject, "status": d.status, "last_status": d.last_status,
                "last_error": d.last_error, "attempts": d.attempts,
                "last_attempt_at": d.last_attempt_at.isoformat() if d.last_attempt_at else None} for d in logged]))
    return _page("webhooks.html", caller=caller, csrf=csrf, namespace=namespace, webhooks=hooks)


def stylesheet(call):
    return Response(body=(HERE / "console.css").read_text(), status_code=200,
                    headers={**SECURITY_HEADERS, "Content-Type": "text/css; charset=utf-8"})


def script(call):
    return Response(body=(HERE / "console.js").read_text(), status_code=200,
                    headers={**SECURITY_HEADERS, "Content-Type": "text/javascript; charset=utf-8"})


"""Credentials, grants and access tokens: who the caller is and what they may do.

Credentials look like `dkl_<id>_<secret>`: the id finds the record, the secret (256 random bits)
is kept only as a SHA-256 hash (a fast hash is enough for a random secret of that length).
Roles map to Docker's actions; the token endpoint grants the intersection of what was asked and
what the caller holds, never an error for asking too much.
"""
from __future__ import annotations
import base64
import datetime
import hashlib
import hmac
import json
import re
import secrets
from typing import Dict, FrozenSet, Iterable, List, NamedTuple, Optional, Set, Tuple

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.access import edge, federation, jwt
from chalicelib.backend import Backend
from chalicelib.metadata import keys
from chalicelib.metadata.models import (Credential, failed_conditions, Grant, Principal, read_together,
                                        RepositorySetting, transaction)
from chalicelib.oci import errors, spec
from chalicelib.oci.errors import RegistryError
from chalicelib.oci.spec import DELETE, PULL, PUSH

ROLE_ACTIONS: Dict[str, Set[str]] = {"read": {PULL}, "write": {PULL, PUSH}, "admin": {PULL, PUSH, DELETE}}
ANYONE = "*"
_CREDENTIAL = re.compile(re.escape(spec.CREDENTIAL_PREFIX) + r"([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_SCOPE = re.compile(r"repository(?:\([a-z]+\))?:([^:]+):([a-z*,]*)|registry:(catalog|admin):\*")
KINDS = ("user", "robot", "team")


class Caller(NamedTuple):
    name: Optional[str]  # None: anonymous
    credential_id: Optional[str] = None
    admin: bool = False
    # The credential the caller proved at the token endpoint (None for a caller known by an
    # access token, which carries only its id).
    credential: Optional[Credential] = None
    # The teams it is a member of, when its principal was read (None: read them when needed).
    teams: Optional[FrozenSet[str]] = None
    # A robot that proved itself with a federated identity's ID token: what it proved
    # (federation.Proof), which its access tokens carry for the audit trail.
    federated: Optional[federation.Proof] = None


ANONYMOUS = Caller(None)


def caller_of(claims: Optional[dict]) -> Caller:
    """The caller an access token (already verified) speaks for."""
    if not claims or not claims.get("sub"):
        return ANONYMOUS
    return Caller(claims["sub"], claims.get("cid"), bool(claims.get("admin")))


def basic_credentials(header: str) -> Tuple[str, str]:
    """(user name, secret) of an `Authorization: Basic …` header, or UNAUTHORIZED."""
    try:
        username, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except ValueError:  # not base64, not ASCII, not UTF-8
        raise RegistryError(errors.UNAUTHORIZED, "malformed Basic credentials") from None
    return username, secret


def held(caller: Caller, repositories: List[str]) -> Dict[str, Set[str]]:
    """What the caller may do on each repository, from its grants and its teams' grants on the
    repository and its namespace (an admin may do everything), except push where the namespace
    is a pull-through cache (chalicelib/pullthrough/proxy.py): one batch read for the grants and the
    namespaces' settings (and, for a caller known by an access token, one read of its
    principal for its teams)."""
    return held_reading(caller, repositories)[0]


def held_reading(caller: Caller, repositories: List[str], *also: Tuple[type, tuple]
                 ) -> Tuple[Dict[str, Set[str]], List[Optional[object]]]:
    """`held`, and the items `also` names, read in the same batch."""
    namespaces = sorted({keys.namespace_of(name) for name in repositories})
    grant_keys = []
    if not caller.admin:
        subjects = [ANYONE]
        if caller.name:
            subjects.append(f"user:{caller.name}")
            subjects.extend(f"team:{team}" for team in sorted(_teams(caller)))
        wanted = {resource for name in repositories for resource in keys.resources_of(name)}
        grant_keys = [(resource, subject) for resource in sorted(wanted) for subject in subjects]
    found = read_together(*[(Grant, key) for key in grant_keys],
                          *[(RepositorySetting, (keys.resource(namespace),)) for namespace in namespaces], *also)
    roles: Dict[str, Set[str]] = {}
    for grant in filter(None, found[:len(grant_keys)]):
        given = ROLE_ACTIONS.get(grant.role, set())
        # A grant to anyone gives pull at most, whatever it says (set_grant makes no other).
        roles.setdefault(grant.resource, set()).update(given & {PULL} if grant.subject == ANYONE else given)
    caches = {namespace for namespace, item in zip(namespaces, found[len(grant_keys):])
              if item is not None and item.upstream}
    answer = {}
    for name in repositories:
        actions = set(ROLE_ACTIONS["admin"]) if caller.admin else \
            set().union(*(roles.get(resource, set()) for resource in keys.resources_of(name)))
        if keys.namespace_of(name) in caches:
            actions.discard(PUSH)
        answer[name] = actions
    return answer, found[len(found) - len(also):]


_KEY_SETS: Optional[federation.KeySets] = None


def key_sets(backend: Backend) -> federation.KeySets:
    """The issuers' keys, fetched and kept once per process."""
    global _KEY_SETS
    if _KEY_SETS is None:
        _KEY_SETS = federation.KeySets(backend.settings.in_lambda)
    return _KEY_SETS


def _teams(caller: Caller) -> FrozenSet[str]:
    if caller.teams is not None:
        return caller.teams
    try:
        return frozenset(Principal.get(caller.name).teams or ())
    except DoesNotExist:
        return frozenset()


def _unknown(name: str) -> RegistryError:
    return RegistryError(errors.ADMIN_UNKNOWN, f"no user, robot or team {name!r}")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_credential_text() -> str:
    return f"{spec.CREDENTIAL_PREFIX}{secrets.token_hex(8)}_{secrets.token_urlsafe(spec.CREDENTIAL_SECRET_BYTES)}"


class AuthService:
    def __init__(self, backend: Backend):
        self._backend = backend

    # --- credentials ---------------------------------------------------------------------------

    def bootstrap_admin(self, token: Optional[str] = None, description: str = "bootstrap") -> str:
        """The first admin: user `admin` with the given access token or a new one, returned so it
        can be shown once. Only its hash is stored."""
        token = token or new_credential_text()
        self.ensure_principal("admin", admin=True)
        self.store_credential("admin", token, description=description)
        return token

    def store_credential(self, principal: str, text: str, kind: str = "access",
                         lifetime_seconds: Optional[int] = None, description: Optional[str] = None,
                         parent: Optional[Credential] = None) -> Credential:
        """Store a credential's hash. A refresh token names the access credential it was exchanged
        for (`parent`) and never outlives it."""
        match = _CREDENTIAL.fullmatch(text)
        if not match:
            raise ValueError(f"a credential looks like {spec.CREDENTIAL_PREFIX}<16 hex>_<43 base64url>")
        now = self._backend.clock()
        expires_at = int(now.timestamp()) + lifetime_seconds if lifetime_seconds else None
        if parent is not None and parent.expires_at is not None:
            expires_at = min(expires_at or parent.expires_at, parent.expires_at)
        credential = Credential(match.group(1), principal=principal, kind=kind, secret_hash=_hash(match.group(2)),
                                created_at=now, description=description, expires_at=expires_at,
                                parent=parent.credential_id if parent is not None else None)
        with transaction() as txn:
            txn.save(credential)
            self._backend.audit.record_in(txn, "credential.create", principal=principal, credential=credential.credential_id,
                            kind=kind, expires_at=credential.expires_at, parent=credential.parent)
        return credential

    def ensure_principal(self, name: str, kind: str = "user", admin: bool = False) -> Principal:
        principal = Principal(name, kind=kind, admin=admin, created_at=self._backend.clock())
        principal.save()
        return principal

    def authenticate(self, text: str, kind: str = "access", username: Optional[str] = None) -> Caller:
        """The caller a secret proves, or UNAUTHORIZED (never saying which check failed). A
        refresh token holds only while the access credential it came from holds too. A robot's
        password may be an ID token of an identity it trusts (`federated`)."""
        match = _CREDENTIAL.fullmatch(text or "")
        refused = RegistryError(errors.UNAUTHORIZED, "invalid credentials")
        if not match and kind == "access" and username and federation.looks_like_token(text):
            return self.federated(username, text)
        if not match:
            raise refused
        # The credential, with the principal the caller names (basic auth) in the same read; a
        # refresh token's principal and parent credential in a second.
        credential, *named = read_together((Credential, (match.group(1),)),
                                           *([(Principal, (username,))] if username is not None else []))
        if credential is None:
            raise refused
        principal = named[0] if named else None
        later = ([] if named else [(Principal, (credential.principal,))]) + \
            ([(Credential, (credential.parent,))] if credential.parent else [])
        found = iter(read_together(*later))
        principal = principal if named else next(found)
        parent = next(found) if credential.parent else None
        now = self._backend.clock().timestamp()
        if (principal is None or principal.name != credential.principal or credential.kind != kind
                or not self._usable(credential, now)
                or not hmac.compare_digest(credential.secret_hash, _hash(match.group(2)))
                or (credential.parent and not (parent is not None and parent.kind == "access"
                                               and parent.principal == principal.name and self._usable(parent, now)))):
            raise refused
        if credential.last_used_at is None or (self._backend.clock() - credential.last_used_at).total_seconds() \
                >= spec.CREDENTIAL_LAST_USE_RESOLUTION_SECONDS:
            credential.update(actions=[Credential.last_used_at.set(self._backend.clock())])
        return Caller(principal.name, credential.credential_id, principal.admin, credential,
                      frozenset(principal.teams or ()))

    def federated(self, robot: str, token: str) -> Caller:
        """The robot an ID token proves, through one of its trusts (one read: the principal), or
        UNAUTHORIZED whose `reason` says, for the audit trail only, which condition failed."""
        def refused(reason: str) -> RegistryError:
            error = RegistryError(errors.UNAUTHORIZED, "invalid credentials")
            error.reason = reason
            return error
        try:
            principal = Principal.get(robot)
        except DoesNotExist:
            raise refused(f"no robot {robot[:100]!r}") from None
        trusts = federation.trusts_of(principal.trusts) if principal.kind == "robot" else []
        if not trusts:
            raise refused(f"{robot} is not a robot that trusts federated identities")
        try:
            proof = federation.verify(token, trusts, self._backend.clock().timestamp(), key_sets(self._backend))
        except federation.Refused as error:
            raise refused(error.reason) from None
        return Caller(principal.name, None, False, None, frozenset(principal.teams or ()), proof)

    # --- federated identities ------------------------------------------------------------------

    def trusts(self, robot: str) -> List[federation.Trust]:
        return federation.trusts_of(self._robot(robot).trusts)

    def add_trust(self, robot: str, document: dict) -> federation.Trust:
        """Let `robot` be proved by ID tokens of a federated identity (federation.new_trust)."""
        principal = self._robot(robot)
        try:
            trust = federation.new_trust(document.get("issuer"), document.get("audience"), document.get("subject"),
                                         document.get("claims") or {})
        except federation.Invalid as error:
            raise RegistryError(errors.ADMIN_INVALID, str(error)) from None
        held = [t for t in federation.trusts_of(principal.trusts) if t.id != trust.id]
        if len(held) >= federation.MAX_TRUSTS:
            raise RegistryError(errors.ADMIN_INVALID, f"a robot trusts at most {federation.MAX_TRUSTS} identities")
        self._write_trusts(principal, held + [trust], "robot.trust", trust.document())
        return trust

    def remove_trust(self, robot: str, trust_id: str) -> None:
        principal = self._robot(robot)
        held = federation.trusts_of(principal.trusts)
        if not any(t.id == trust_id for t in held):
            raise RegistryError(errors.ADMIN_UNKNOWN, f"{robot} has no trust {trust_id[:40]!r}")
        self._write_trusts(principal, [t for t in held if t.id != trust_id], "robot.untrust", {"id": trust_id})

    def _robot(self, name: str) -> Principal:
        principal = self.principal(name)
        if principal.kind != "robot":
            raise RegistryError(errors.ADMIN_INVALID, f"{name!r} is not a robot: only robots trust federated identities")
        return principal

    def _write_trusts(self, principal: Principal, trusts: List[federation.Trust], action: str, detail: dict) -> None:
        text = json.dumps([t.document() for t in trusts]) if trusts else None
        try:
            with transaction() as txn:
                txn.update(principal, actions=[Principal.trusts.set(text) if text else Principal.trusts.remove()],
                           condition=Principal.name.exists() & (Principal.trusts == principal.trusts
                                                                if principal.trusts else Principal.trusts.does_not_exist()))
                self._backend.audit.record_in(txn, action, principal=principal.name, **detail)
        except TransactWriteError as error:
            if not failed_conditions(error):
                raise  # not refused by a condition: busy, or wrong
            raise RegistryError(errors.ADMIN_CONFLICT, f"{principal.name}'s trusts changed meanwhile; try again") from None

    @staticmethod
    def _usable(credential: Credential, now: float) -> bool:
        return not credential.revoked and (credential.expires_at is None or now < credential.expires_at)

    # --- grants --------------------------------------------------------------------------------

    def granted_access(self, caller: Caller, scopes: Iterable[str]) -> List[dict]:
        return self.token_access(caller, scopes)[0]

    def token_access(self, caller: Caller, scopes: Iterable[str]) -> Tuple[List[dict], List[str]]:
        """Docker's `access` claim: for each requested scope, what of it the caller holds; and,
        when the scopes name one repository and the caller may pull it, what the edge may serve
        of it (edge.listed, read with the grants)."""
        wanted: Dict[Tuple[str, str], Set[str]] = {}
        for scope in scopes:
            match = _SCOPE.fullmatch(scope)
            if not match:
                continue  # an unknown scope is granted nothing, not an error
            if match.group(1) is None:
                registry_scope = match.group(3)
                if caller.name is not None and (registry_scope == "catalog" or caller.admin):
                    wanted[("registry", registry_scope)] = {"*"}
                continue
            actions = set(filter(None, match.group(2).split(",")))
            wanted.setdefault(("repository", match.group(1)), set()).update(
                ROLE_ACTIONS["admin"] if "*" in actions else actions)
        repositories = [name for kind, name in wanted if kind == "repository"]
        one = repositories[0] if len(repositories) == 1 and self._backend.settings.edge_secret else None
        held_now, also = held_reading(caller, repositories, *([edge.item_key(one)] if one else []))
        access = [{"type": kind, "name": name,
                   "actions": sorted(actions & held_now[name] if kind == "repository" else actions)}
                  for (kind, name), actions in wanted.items()]
        pulls = one is not None and PULL in next(entry["actions"] for entry in access
                                                       if entry["type"] == "repository" and entry["name"] == one)
        return access, edge.listed(also[0]) if pulls else []

    # --- administration ------------------------------------------------------------------------

    def create_principal(self, name: str, kind: str, admin: bool = False) -> Principal:
        if not spec.PRINCIPAL_NAME_RE.fullmatch(name or "") or kind not in KINDS:
            raise RegistryError(errors.ADMIN_INVALID, f"name must match {spec.PRINCIPAL_NAME_RE.pattern}, "
                                                      f"kind one of {', '.join(KINDS)}")
        principal = Principal(name, kind=kind, admin=admin and kind == "user", created_at=self._backend.clock())
        try:
            with transaction() as txn:
                txn.save(principal, condition=Principal.name.does_not_exist())
                self._backend.audit.record_in(txn, "principal.create", principal=name, kind=kind, admin=principal.admin)
        except TransactWriteError as error:
            if not failed_conditions(error):
                raise  # not refused by a condition: busy, or wrong
            raise RegistryError(errors.ADMIN_CONFLICT, f"{name!r} exists") from None
        return principal

    def principal(self, name: str) -> Principal:
        try:
            return Principal.get(name)
        except DoesNotExist:
            raise _unknown(name) from None

    def principals(self) -> List[Tuple[Principal, List[str]]]:
        """Every principal in name order, with its members (teams) or none. A scan: an admin listing."""
        everyone = sorted(Principal.scan(), key=lambda p: p.name)
        members: Dict[str, List[str]] = {}
        for principal in everyone:
            for team in principal.teams or ():
                members.setdefault(team, []).append(principal.name)
        return [(p, members.get(p.name, [])) for p in everyone]

    def credentials_of(self, name: str) -> List[Credential]:
        """A principal's credentials, oldest first (records only: secrets are never stored)."""
        self.principal(name)
        return sorted(Credential.scan(Credential.principal == name), key=lambda c: c.created_at)

    def grants_on(self, resource: str) -> List[Grant]:
        """The grants on a namespace or one repository."""
        return list(Grant.query(keys.resource(resource)))

    def delete_principal(self, name: str) -> None:
        """Remove a principal: its credentials are revoked (kept for the record), its
        memberships and the grants to it removed."""
        principal = self.principal(name)
        for credential in Credential.scan(Credential.principal == name):
            credential.update(actions=[Credential.revoked.set(True)])
        subject = f"team:{name}" if principal.kind == "team" else f"user:{name}"
        for grant in Grant.scan(Grant.subject == subject):
            grant.delete()
        if principal.kind == "team":
            for member in Principal.scan(Principal.teams.contains(name)):
                member.update(actions=[Principal.teams.delete({name})])
        with transaction() as txn:
            txn.delete(principal)
            self._backend.audit.record_in(txn, "principal.delete", principal=name, kind=principal.kind)

    def new_token(self, principal: str, lifetime_seconds: Optional[int], description: Optional[str]) -> Tuple[str, Credential]:
        if self.principal(principal).kind == "team":
            raise RegistryError(errors.ADMIN_INVALID, "teams have no credentials; their members do")
        text = new_credential_text()
        return text, self.store_credential(principal, text, lifetime_seconds=lifetime_seconds, description=description)

    def revoke_token(self, credential_id: str) -> None:
        try:
            credential = Credential.get(credential_id)
        except DoesNotExist:
            raise RegistryError(errors.ADMIN_UNKNOWN, f"no credential {credential_id!r}") from None
        with transaction() as txn:
            txn.update(credential, actions=[Credential.revoked.set(True)])
            self._backend.audit.record_in(txn, "credential.revoke", principal=credential.principal, credential=credential_id)

    def set_membership(self, team: str, member: str, present: bool) -> None:
        if self.principal(team).kind != "team":
            raise RegistryError(errors.ADMIN_INVALID, f"{team!r} is not a team")
        if self.principal(member).kind == "team":
            raise RegistryError(errors.ADMIN_INVALID, "teams do not nest")
        change = Principal.teams.add({team}) if present else Principal.teams.delete({team})
        try:
            with transaction() as txn:
                txn.update(Principal(member), actions=[change], condition=Principal.name.exists())
                self._backend.audit.record_in(txn, "team.add" if present else "team.remove", team=team, member=member)
        except TransactWriteError as error:  # deleted since it was read: not brought back with only its teams
            if not failed_conditions(error):
                raise  # not refused by a condition: busy, or wrong
            raise _unknown(member) from None

    def set_grant(self, resource: str, subject: str, role: Optional[str]) -> None:
        """Grant `role` (or, with None, remove the grant) on a namespace or repository name."""
        key = keys.resource(resource)
        if not spec.NAME_RE.fullmatch(resource):
            raise RegistryError(errors.ADMIN_INVALID, f"{resource!r} is not a namespace or repository name")
        if subject != ANYONE:
            kind, _, name = subject.partition(":")
            principal = self.principal(name) if kind in ("user", "team") else None
            if principal is None or (kind == "team") != (principal.kind == "team"):
                raise RegistryError(errors.ADMIN_INVALID, "subject is user:<name>, team:<name> or *")
        repository = keys.repository_of_resource(resource)
        if role is None:
            with transaction() as txn:
                txn.delete(Grant(key, subject))
                self._backend.audit.record_in(txn, "grant.revoke", repository, resource=resource, subject=subject)
            return
        if role not in ROLE_ACTIONS or (subject == ANYONE and role != "read"):
            raise RegistryError(errors.ADMIN_INVALID, f"role is one of {sorted(ROLE_ACTIONS)}; anyone may only read")
        with transaction() as txn:
            txn.save(Grant(key, subject, role=role, granted_at=self._backend.clock()))
            self._backend.audit.record_in(txn, "grant.set", repository, resource=resource, subject=subject, role=role)

    # --- access tokens -------------------------------------------------------------------------

    def issue_access_token(self, caller: Caller, access: List[dict], edge_blobs: Iterable[str] = ()
                           ) -> Tuple[str, int, datetime.datetime]:
        """A registry token; one a federated identity earned carries it (`fed`) and lives no
        longer than the ID token it was exchanged for. With `edge_blobs` (token_access) for the
        one repository it may pull, the edge's claim (chalicelib/access/edge.py)."""
        now = self._backend.clock()
        settings = self._backend.settings
        lifetime = spec.ACCESS_TOKEN_SECONDS
        if caller.federated is not None:
            lifetime = max(1, min(lifetime, caller.federated.expires_at - int(now.timestamp())))
        claims = jwt.new_claims(self._backend.public_url(), caller.name or "", settings.token_service, caller.credential_id,
                                access, now.timestamp(), lifetime)
        if caller.admin:
            claims["admin"] = True
        if caller.federated is not None:
            claims["fed"] = caller.federated.audit()
        if edge_blobs:  # token_access lists them only for pull on one repository, with an edge secret
            (repository,) = [entry["name"] for entry in access if entry["type"] == "repository"]
            claims["edge"] = edge.claim(settings.edge_secret, repository, claims["exp"], edge_blobs)
        return jwt.encode(claims, self._backend.signing_keys()[0]), lifetime, now

    def verify_access_token(self, token: str) -> dict:
        return jwt.decode(token, self._backend.signing_keys(), self._backend.settings.token_service,
                          self._backend.clock().timestamp())


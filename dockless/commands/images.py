"""Whole images: `dockless push`, `pull`, `sign` and `verify`."""

import json

import click

from dockless.ui import UI, Exit


def register(main: click.Group) -> None:
    main.add_command(push)
    main.add_command(pull)
    main.add_command(sign)
    main.add_command(verify)


def connect(reference: str, username, password):
    """The parsed reference and a client for its registry (RegistryClient.of: the credentials
    given, else the stored login, else anonymous)."""
    from dockless.client.registry import RegistryClient
    from chalicelib.oci.reference import Reference
    parsed = Reference.parse(reference)
    return parsed, RegistryClient.of(parsed.base_url, username, password)


def credentials(function):
    """-u/--username and --password, from the environment by default (never stored)."""
    function = click.option("--password", envvar="DOCKLESS_PASSWORD", default=None,
                            help="An access token (dkl_…) [env: DOCKLESS_PASSWORD].")(function)
    return click.option("-u", "--username", envvar="DOCKLESS_USERNAME", default=None,
                        help="User or robot name [env: DOCKLESS_USERNAME].")(function)


@click.command()
@click.argument("image")
@click.argument("destination", required=False)
@credentials
@click.pass_obj
def push(ui: UI, image, destination, username, password):
    """Push IMAGE to the registry, layer bytes straight to the bucket.

    IMAGE is a local docker image (saved from the daemon), an OCI layout DIR[:TAG], or a
    docker-archive FILE.tar. DESTINATION is host[:port]/name[:tag] (default: IMAGE itself).
    Blobs the registry already has are skipped; the rest go up in parallel.

    \b
    Example:
      dockless push localhost:5000/team/app:1
      dockless push ./layout:v1 localhost:5000/team/app:1
    """
    import tempfile
    from pathlib import Path

    from chalicelib.oci import sizes
    from dockless.images import sources
    from dockless.images import transfer

    target, client = connect(destination or image, username, password)
    with tempfile.TemporaryDirectory(prefix="dockless-push-") as workdir:
        result = transfer.push(sources.open_image(image, Path(workdir)), target, client, ui)
    ui.result(f"pushed {target.host}/{target.name}@{result.digest} ({len(result.uploaded)} blobs, "
              f"{sizes.human(result.uploaded_bytes)} uploaded; {len(result.skipped)} already there)")


@click.command()
@click.argument("reference")
@click.argument("directory", type=click.Path(file_okay=False))
@credentials
@click.pass_obj
def pull(ui: UI, reference, directory, username, password):
    """Pull REFERENCE (host[:port]/name[:tag|@digest]) into an OCI layout DIRECTORY, blobs in
    parallel and straight from the bucket, every digest verified.

    \b
    Example:
      dockless pull localhost:5000/team/app:1 ./layout
      skopeo copy oci:./layout:1 docker-daemon:team/app:1
    """
    from pathlib import Path

    from dockless.images import transfer

    source, client = connect(reference, username, password)
    digest = transfer.pull(source, Path(directory), client, ui)
    ui.result(f"pulled {source} ({digest}) into {directory}")


@click.command()
@click.argument("reference")
@click.option("--key", "fingerprint", required=True, help="Fingerprint of a key in the local gpg keyring.")
@click.option("--sign-identity", default=None,
              help="The name the signature vouches for [default: REFERENCE as given]; use the registry's "
                   "public name when REFERENCE goes through a local gateway.")
@credentials
@click.pass_obj
def sign(ui: UI, reference, fingerprint, sign_identity, username, password):
    """Sign the image REFERENCE with a local gpg key and upload the signature.

    \b
    Example:
      dockless sign registry.example.com/team/app:1 --key 062B4DAF...
    """
    from dockless.images import signing

    target, client = connect(reference, username, password)
    name = signing.sign(client, target, fingerprint, sign_identity)
    ui.result(f"signed {target} as {name}")


@click.command()
@click.argument("reference")
@click.option("--keyring", type=click.File("rb"), default=None,
              help="Armoured public keys to trust [default: the registry's /keys/<namespace>/KEYS].")
@click.option("--cosign-key", type=click.File("r"), default=None,
              help="cosign public keys (PEM) to trust [default: the registry's /keys/<namespace>/cosign.pub].")
@click.option("--trusted-root", type=click.File("r"), default=None,
              help="A sigstore trusted root (JSON) for keyless cosign signatures [default: the registry's].")
@click.option("--issuer", default=None, help="With --subject: the keyless identity to trust (an OIDC issuer's URL) "
                                             "[default: the identities the registry trusts for the namespace].")
@click.option("--subject", default=None, help="The keyless identity's subject: an email or URI; * matches any run.")
@click.option("--trust-store", type=click.File("r"), default=None,
              help="Root certificates (PEM) for notation signatures [default: the registry's for the namespace].")
@credentials
@click.pass_obj
def verify(ui: UI, reference, keyring, cosign_key, trusted_root, issuer, subject, trust_store, username, password):
    """Check the signatures of REFERENCE, OpenPGP (the signature extension), cosign's (its `.sig`
    manifest: by key, or keyless with a certificate and a transparency-log bundle), and sigstore
    bundles and notation signatures among its referrers, one paragraph each; exit 1 unless one verifies with a trusted key or identity for this digest and
    this name.

    \b
    Example:
      dockless verify registry.example.com/team/app:1 --keyring KEYS
      dockless verify registry.example.com/team/app:1 --cosign-key cosign.pub
      dockless verify registry.example.com/team/app:1 --trusted-root trusted_root.json \\
          --issuer https://token.actions.githubusercontent.com --subject 'https://github.com/acme/*'
    """
    from chalicelib.signing import keyless, notation
    from dockless.images import signing

    target, client = connect(reference, username, password)
    namespace = target.name.split("/")[0]
    scoped = {"repository": target.name}  # what the namespace trusts for this repository
    keys = keyring.read() if keyring else client.session.get(f"{target.base_url}/keys/{namespace}/KEYS",
                                                             params=scoped, timeout=60).content
    cosign_keys = cosign_key.read() if cosign_key else client.session.get(
        f"{target.base_url}/keys/{namespace}/cosign.pub", params=scoped, timeout=60).text
    if (issuer is None) != (subject is None):
        raise click.UsageError("--issuer and --subject go together")
    published = signing.published_trust(client, target.name)
    roots = [trusted_root.read()] if trusted_root is not None else published[keyless.ROOT]
    identities = [json.dumps({"issuer": issuer, "subject": subject})] if issuer is not None \
        else published[keyless.IDENTITY]
    stores, x509_identities = ({notation.ROOT: [trust_store.read()]}, []) if trust_store is not None \
        else (published, published[notation.IDENTITY])
    results = (signing.verify(client, target, keys) + signing.verify_cosign(client, target, cosign_keys, roots, identities)
               + signing.verify_bundles(client, target, cosign_keys, roots, identities)
               + signing.verify_notation(client, target, stores, x509_identities))
    good = False
    for result in results:
        ok = result["valid"] and result["digest_matches"] and result["identity_matches"]
        good = good or ok
        if result.get("format") == "notation":
            signer = f"notation: certificate {result['certificate']}" + (
                f", trusted root {result['fingerprint']}" if result["fingerprint"] else ", no trusted root")
        elif result.get("format") == "sigstore-bundle":
            signer = "sigstore bundle: " + (f"certificate for {result['certificate']}" if result["certificate"]
                                            else "by key") + (f", trusted {result['fingerprint']}" if result["fingerprint"]
                                                              else ", nothing trusted made it")
        elif result.get("format") == "cosign-keyless":
            signer = f"cosign keyless: certificate for {result['certificate']}" + (
                f", trusted identity {result['fingerprint']}" if result["fingerprint"] else ", no trusted identity")
        elif result.get("format") == "cosign":
            signer = f"cosign key {result['fingerprint']}" if result["fingerprint"] else "cosign: no trusted key"
        else:
            signer = "Primary key fingerprint: " + (signing.grouped(result["fingerprint"]) if result["fingerprint"]
                                                    else f"key id {result['key_id']}")
        ui.result(f"{result['name']}\n  {signer}\n"
                  f"  {'trusted, verified' if result['valid'] else 'NOT trusted or not verified'}; "
                  f"{'' if result['digest_matches'] else 'FOR ANOTHER DIGEST; '}"
                  f"identity {result['identity']}{'' if result['identity_matches'] else ' (does not match)'}")
    if not results:
        ui.result(f"{target}: no signatures")
    raise SystemExit(Exit.OK if good else Exit.FAILED)

#!/usr/bin/env bash
# Builds a Lambda layer with a full gpg (gpg, gpg-agent and the libraries they load) from the
# Lambda base image of the functions' runtime (PYTHON_VERSION, default 3.11: what `chalice package`
# picks here; 3.11 is Amazon Linux 2 with yum, 3.12+ Amazon Linux 2023 with dnf). Needs Docker and
# network access; see README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
docker run --rm --entrypoint /bin/bash -v "$here:/out" "public.ecr.aws/lambda/python:${PYTHON_VERSION:-3.11}" -c '
  set -euo pipefail
  if command -v dnf >/dev/null; then dnf install -y --allowerasing gnupg2 zip >/dev/null
  else yum install -y gnupg2 zip >/dev/null; fi
  mkdir -p /layer/bin /layer/lib
  for program in gpg gpg-agent gpgconf; do cp "$(command -v $program)" /layer/bin/; done
  for program in /layer/bin/*; do
    ldd "$program" | awk "/=>/ {print \$3}" | while read -r library; do
      case "$library" in /lib64/libc.so*|/lib64/ld-linux*) ;; *) cp -n "$library" /layer/lib/ ;; esac
    done
  done
  cd /layer && zip -qr /out/gpg-layer.zip bin lib
'
echo "built $here/gpg-layer.zip"

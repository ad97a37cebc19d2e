#!/usr/bin/env bash
# Builds a Lambda layer with a full gpg (gpg, gpg-agent and the libraries they load) from the
# Lambda base image of the functions' runtime and architecture (infra/runtime.py: python3.13 on
# arm64, Amazon Linux 2023 with dnf; PYTHON_VERSION and PLATFORM override them). Needs Docker (with
# arm64 emulation, binfmt/qemu, on an x86 machine) and network access; see README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
docker run --rm --platform "${PLATFORM:-linux/arm64}" --entrypoint /bin/bash -v "$here:/out" \
  "public.ecr.aws/lambda/python:${PYTHON_VERSION:-3.13}" -c '
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

# The two set-up commands: `make serve` and `make test`. Both set up what they need.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed
# Debian packages the end-to-end tests drive: dockerd + docker client, skopeo, containerd + ctr, gpg, podman, buildah.
E2E_PACKAGES := docker.io skopeo containerd gnupg podman buildah chromium docker-registry
E2E_COMMANDS := dockerd docker skopeo containerd ctr gpg podman buildah chromium docker-registry

.PHONY: setup serve test test-api fuzz race mutate e2e-tools bench bench-load bench-cost bench-scan bench-bundle deploy clean

setup: $(STAMP)

# chalice 1.34 (requirements-dev.txt) requires pip < 26.3: an upgrade past it would be undone at once.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade "pip<26.3"
	$(VENV)/bin/pip install -q -r requirements-dev.txt -e .
	touch $@

# TLS=1: HTTPS with a local CA kept in .local/tls (dockless serve prints how to trust it).
serve: setup
	$(VENV)/bin/dockless serve --port 5000 $(if $(TLS),--tls --tls-dir .local/tls)

# Installs the Debian packages the end-to-end tests need, when a command is missing (needs root).
e2e-tools:
	@missing=""; for c in $(E2E_COMMANDS); do command -v $$c >/dev/null || [ -x /usr/sbin/$$c ] || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing $(E2E_PACKAGES) (missing:$$missing)"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(E2E_PACKAGES); \
	fi

# The layers first (pyproject.toml [tool.importlinter]: seconds), then every test.
test: setup e2e-tools
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python -m pytest

# The in-process tier alone: seconds, no dockerd.
test-api: setup
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python -m pytest tests/api tests/infra

# The fuzz tier alone with fresh random examples, many more than `make test` draws (minutes).
fuzz: setup
	HYPOTHESIS_PROFILE=deep $(VENV)/bin/python -m pytest -m fuzz tests/api tests/dockless

# The garbage collection race in full: 1,000 operations against GC (make test runs 60; minutes).
race: setup e2e-tools
	DOCKLESS_RACE_ROUNDS=1000 $(VENV)/bin/python -m pytest tests/e2e/test_gc_race.py

# Mutation testing of the security-critical modules against the in-process tiers (an hour or
# more; not part of `make test`). Its own venv: mutmut must import the mutated copy in mutants/,
# which the editable install of .venv would shadow. Settings: [tool.mutmut] in pyproject.toml.
MUTATE_VENV := .venv-mutate
mutate:
	test -x $(MUTATE_VENV)/bin/mutmut || ($(PYTHON) -m venv $(MUTATE_VENV) && \
	  $(MUTATE_VENV)/bin/pip install -q -r requirements-dev.txt mutmut==3.8.1)
	$(MUTATE_VENV)/bin/mutmut run || true
	$(MUTATE_VENV)/bin/python -m tests.mutation_report $(MUTATE_VENV)/bin/mutmut

# Side-by-side timings with the reference registry (Debian's docker-registry); not a test.
bench: setup e2e-tools
	$(VENV)/bin/python -m bench.transfer

# Concurrent pulls and pushes against the local stack: throughput, latency percentiles, errors; not a test.
bench-load: setup
	$(VENV)/bin/python -m bench.load

# Requests, DynamoDB units, S3 requests and dollars of docker pull/push (N = 1, 5, 20); not a test.
bench-cost: setup e2e-tools
	$(VENV)/bin/python -m bench.cost

# The SBOM of a 1 GiB image (time, peak memory), matching 100k advisories, a scan's AWS calls and cost; not a test.
bench-scan: setup
	$(VENV)/bin/python -m bench.scan

# The Lambda bundle: deployment.zip's size and the packaged app's cold import; not a test.
bench-bundle: setup
	$(VENV)/bin/python -m bench.bundle

# Deploys stage $(STAGE) with the AWS credentials in the environment (README "Deploy to AWS").
STAGE ?= prod
deploy: setup
	$(VENV)/bin/dockless deploy --stage $(STAGE) $(if $(REGION),--region $(REGION)) \
	  $(if $(DOMAIN),--domain $(DOMAIN) --certificate-arn $(CERTIFICATE_ARN))

clean:
	rm -rf $(VENV) $(MUTATE_VENV) mutants .pytest_cache

# Two commands do all set-up on a fresh machine:
#   make synth   -> installs, then `mlops synth --stack dev` (no cloud, no credentials, no Pulumi CLI)
#   make test    -> installs, then every test (the integration tests start and stop LocalStack themselves)

PYTHON ?= python3
# LocalStack 2026.3.0 needs Python >= 3.12 and pins that clash with ours: it gets a virtualenv of its own.
# (A pyenv shim may exist for a version that is not active: each candidate must really run.)
LOCALSTACK_PYTHON ?= $(shell for c in python3.13 python3.12 /root/.pyenv/versions/3.13*/bin/python /root/.pyenv/versions/3.12*/bin/python; do \
	$$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { command -v $$c || echo $$c; } && break; done)
VENV := .venv
LS_VENV := .localstack-venv
# asl-validator (npm) checks the synthesized state machine definitions in the tests; pinned by its lock file.
ASL_VALIDATOR := .ci/asl-validator
STACK ?= dev

.PHONY: install browser deploy-install synth test runtime bench localstack clean

install: $(VENV)/.installed $(LS_VENV)/.installed $(ASL_VALIDATOR)/node_modules/.installed browser

# Debian's Chromium renders `mlops report`'s page in the tests (headless, loopback only). Installed when missing
# and we may (root); otherwise the test skips locally and fails under CI=true.
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || { \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; }; }

# uv installs both virtualenvs (~5x less CPU than pip's resolver and unpacking here: 44 -> 9 CPU-s for ours); pip
# stays in each (the program runs `pip download` for the code package's wheels). uv compiles no bytecode.
UV := uv==0.13.9

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip $(UV)
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python -e ".[test]"
	@# The bytecode, on every core (pip compiled its ~13,000 modules one at a time). Not the packages' own test suites nor pulumi-aws (119 of the 268 MB of source; a program imports a few of its 241
	@# services, which Python compiles on first import): ~100 CPU-s for everything, ~48 without those.
	$(VENV)/bin/python -m compileall -q -j 0 -x '/tests?/|/site-packages/pulumi_aws/' $(VENV)/lib
	touch $@

# What a deploy job installs: runtime dependencies only (no test tools), every one pinned and hash-checked,
# then the project itself from this checkout without touching an index.
deploy-install: $(VENV)/.deploy

$(VENV)/.deploy: .ci/deploy-requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes --no-deps -r .ci/deploy-requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation --no-index -e .
	touch $@

# No bytecode (uv's default): of the ~11,000 modules of LocalStack's pins it imports ~1,300 at start and compiles those
# once (its first start, in the tests or `make localstack`, writes them).
# .ci/localstack-parsetabs.py: PLY's tables for the JSONPath grammar of LocalStack's Step Functions, which otherwise
# rebuilds them for every path it parses (~60% of LocalStack's CPU in the CT flow's scenarios).
$(LS_VENV)/.installed: .ci/localstack-requirements.txt .ci/localstack-parsetabs.py
	@test -n "$(LOCALSTACK_PYTHON)" || { echo "LocalStack needs Python >= 3.12; set LOCALSTACK_PYTHON=/path/to/python3.13"; exit 1; }
	$(LOCALSTACK_PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install --quiet --upgrade pip $(UV)
	$(LS_VENV)/bin/uv pip install --quiet --python $(LS_VENV)/bin/python -r .ci/localstack-requirements.txt
	$(LS_VENV)/bin/python .ci/localstack-parsetabs.py
	touch $@

$(ASL_VALIDATOR)/node_modules/.installed: $(ASL_VALIDATOR)/package.json $(ASL_VALIDATOR)/package-lock.json
	@command -v npm >/dev/null || { echo "asl-validator needs Node.js and npm (e.g. apt-get install nodejs npm)"; exit 1; }
	npm ci --prefix $(ASL_VALIDATOR) --no-audit --no-fund --silent
	touch $@

synth: $(VENV)/.installed
	$(VENV)/bin/mlops synth --stack $(STACK)

# Two workers (the machine's cores): the LocalStack tier and the container tier each stay on one worker (the
# scheduler in tests/conftest.py), the unit tests fill the rest. `pytest` alone runs everything in one process.
# The installs run side by side (pip, pip and npm are mostly waiting on unpacking and the disk). Bytecode is
# written even where PYTHONDONTWRITEBYTECODE is set (as on our CI machines): otherwise every one of the suite's
# few hundred subprocesses recompiles the modules it imports, and pytest rewrites every test module per worker.
test:
	$(MAKE) --no-print-directory -j4 install
	env -u PYTHONDONTWRITEBYTECODE $(VENV)/bin/python -m pytest -n 2 --durations=15

# The SageMaker scikit-learn image's environment for tests/runtime (the tier builds it itself on first use;
# cached under ~/.cache/mlops-stack/runtime/ by the hash of its lock, glue and recipe).
runtime: $(VENV)/.installed
	$(VENV)/bin/python tests/runtime/image.py

bench: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/bench_synth.py
	$(VENV)/bin/python benchmarks/bench_drift.py
	$(VENV)/bin/python benchmarks/bench_quality.py

# A LocalStack in the foreground, for `pulumi up --stack local` and trying the CLI by hand.
localstack: $(LS_VENV)/.installed
	env -u PYTHONDONTWRITEBYTECODE GATEWAY_LISTEN=127.0.0.1:4566 $(LS_VENV)/bin/python -m localstack.runtime.main

clean:
	rm -rf $(VENV) $(LS_VENV) $(ASL_VALIDATOR)/node_modules .pytest_cache .hypothesis

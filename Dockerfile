# The emulator as a shared service: REST API and downloads on 8080, MCP on 9090, state in /data.
# BASE is any Debian-like image with python3 (3.11 or newer) and its venv module; where no image
# registry is reachable, .ci/docker-base makes one from Debian's packages.
ARG BASE=python:3.12-slim

# The dependencies (with the postgres extra, for --store) and the build backend, read from
# pyproject.toml into a file that changes only when they do: the (slow) layer that installs them
# is rebuilt only then, not on every edit of pyproject.toml or of the code.
FROM ${BASE} AS requirements
COPY pyproject.toml /
RUN python3 -c "import tomllib; t = tomllib.load(open('/pyproject.toml', 'rb')); \
p = t['project']; r = p['dependencies'] + p['optional-dependencies']['postgres']; \
print('\n'.join(r + t['build-system']['requires']))" >/requirements.txt

FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    FULLSTORY_EMULATOR_HOST=0.0.0.0 \
    FULLSTORY_EMULATOR_PORT=8080 \
    FULLSTORY_EMULATOR_MCP_PORT=9090 \
    FULLSTORY_EMULATOR_DATA_DIR=/data

COPY --from=requirements /requirements.txt /opt/requirements.txt
RUN python3 -m venv /opt/venv \
    && pip install --no-cache-dir --disable-pip-version-check -r /opt/requirements.txt \
    && useradd --create-home --uid 10001 emulator \
    && mkdir -p /data /fixtures \
    && chown emulator /data

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY fixtures ./fixtures
COPY fullstory_emulator ./fullstory_emulator
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation . \
    && rm -rf build ./*.egg-info

# OCI labels (`docker inspect` shows them), after the slow layers, which a version bump reuses.
# VERSION must be fullstory_emulator/__init__.py's __version__ (tests/e2e/test_dockerfile.py holds it to
# that); SOURCE is where the code is published.
ARG VERSION=0.1.0
ARG SOURCE=https://github.com/fullstory-emulator/fullstory-emulator
LABEL org.opencontainers.image.title="fullstory-emulator" \
      org.opencontainers.image.description="A local, offline emulator of FullStory's Segment Export API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT"

USER emulator
VOLUME ["/data"]
EXPOSE 8080 9090
# Runs with the container's environment, so it follows FULLSTORY_EMULATOR_PORT and _TLS.
HEALTHCHECK --interval=5s --timeout=10s --start-period=30s --retries=3 \
    CMD ["fullstory-emulator", "health"]

CMD ["fullstory-emulator"]

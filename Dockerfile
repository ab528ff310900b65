# The emulator as a shared service: REST API and downloads on 8080, MCP on 9090, state in /data.
# BASE is any Debian-like image with python3 (3.11 or newer) and its venv module; where no image
# registry is reachable, .ci/docker-base makes one from Debian's packages.
ARG BASE=python:3.12-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    FULLSTORY_EMULATOR_HOST=0.0.0.0 \
    FULLSTORY_EMULATOR_PORT=8080 \
    FULLSTORY_EMULATOR_MCP_PORT=9090 \
    FULLSTORY_EMULATOR_DATA_DIR=/data

# The dependencies (with the postgres extra, for --store) and the build backend alone first:
# this layer is rebuilt only when pyproject.toml changes, not on every change to the code.
WORKDIR /app
COPY pyproject.toml ./
RUN python3 -m venv /opt/venv \
    && python3 -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); \
print('\n'.join(p['project']['dependencies'] + p['project']['optional-dependencies']['postgres'] \
+ p['build-system']['requires']))" >/tmp/req.txt \
    && pip install --no-cache-dir --disable-pip-version-check -r /tmp/req.txt \
    && rm /tmp/req.txt

COPY README.md LICENSE ./
COPY fixtures ./fixtures
COPY emulator ./emulator
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation . \
    && rm -rf build ./*.egg-info \
    && useradd --create-home --uid 10001 emulator \
    && mkdir -p /data /fixtures \
    && chown emulator /data

USER emulator
VOLUME ["/data"]
EXPOSE 8080 9090
# Runs with the container's environment, so it follows FULLSTORY_EMULATOR_PORT and _TLS.
HEALTHCHECK --interval=5s --timeout=10s --start-period=30s --retries=3 \
    CMD ["fullstory-emulator", "health"]

CMD ["fullstory-emulator"]

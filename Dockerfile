# The emulator as a shared service: REST API and downloads on 8080, MCP on 9090, state in /data.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FULLSTORY_EMULATOR_HOST=0.0.0.0 \
    FULLSTORY_EMULATOR_PORT=8080 \
    FULLSTORY_EMULATOR_MCP_PORT=9090 \
    FULLSTORY_EMULATOR_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY emulator ./emulator
COPY fixtures ./fixtures
RUN pip install --no-cache-dir '.[postgres]' \
    && useradd --create-home --uid 10001 emulator \
    && mkdir -p /data /fixtures \
    && chown emulator /data

USER emulator
VOLUME ["/data"]
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/__emulator/health', timeout=2)"]

CMD ["fullstory-emulator"]

"""The deploy/ examples, checked as far as a machine without Compose or a cluster can: their
settings are real settings, every name refers to something that exists (services, ports, the
Secret's key), three replicas share one database, and download URLs name the load balancer."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import yaml

from fullstory_emulator.settings import ENV_PREFIX, Settings
from tests.helpers import ROOT

DEPLOY = ROOT / "deploy"


def settings_of(env: dict[str, str]) -> Settings:
    return Settings.load({}, {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)})


def test_compose_runs_three_replicas_on_one_postgres_behind_nginx():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "emulator", "balancer"}
    emulator, postgres, balancer = services["emulator"], services["postgres"], services["balancer"]
    assert emulator["deploy"]["replicas"] == 3
    assert (DEPLOY / emulator["build"] / "Dockerfile").is_file()
    assert emulator["depends_on"] == {"postgres": {"condition": "service_healthy"}}

    settings = settings_of(emulator["environment"])
    assert settings.data_dir is None and settings.mcp_port is None
    store = urlsplit(settings.store or "")
    db = postgres["environment"]
    assert (store.scheme, store.hostname, store.port) == ("postgresql", "postgres", 5432)
    assert (store.username, store.password, store.path) == (
        db["POSTGRES_USER"],
        db["POSTGRES_PASSWORD"],
        "/" + db["POSTGRES_DB"],
    )
    published = balancer["ports"][0].split(":")
    assert settings.public_url == f"http://localhost:{published[0]}"
    assert emulator["expose"] == [str(settings.port)]  # the image's 8080
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in balancer["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])

    nginx = (DEPLOY / "nginx.conf").read_text()
    upstream = re.search(r"upstream (\w+) \{(.*?)\}", nginx, re.DOTALL)
    assert upstream is not None
    servers = re.findall(r"^\s*server ([\w.-]+):(\d+)", upstream.group(2), re.MULTILINE)
    assert servers == [("emulator", str(settings.port))]
    assert f"proxy_pass http://{upstream.group(1)};" in nginx
    assert re.search(rf"listen {published[1]};", nginx)
    assert "proxy_next_upstream off;" in nginx  # faults reach the client, spent once
    assert "client_max_body_size 1m;" in nginx and settings.max_body_bytes == 1 << 20


def documents(name: str) -> dict[tuple[str, str], dict[str, Any]]:
    docs = yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text())
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}


def test_kubernetes_deployment_service_and_postgres_fit_together():
    found = {**documents("emulator.yaml"), **documents("postgres.yaml")}
    deployment = found[("Deployment", "fullstory-emulator")]
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"] == labels
    (container,) = spec["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    secret_ref = env["FULLSTORY_EMULATOR_STORE"]["valueFrom"]["secretKeyRef"]
    secret = found[("Secret", secret_ref["name"])]
    url = secret["stringData"][secret_ref["key"]]
    settings = settings_of(
        {
            **{name: e["value"] for name, e in env.items() if "value" in e},
            "FULLSTORY_EMULATOR_STORE": url,
        }
    )
    store = urlsplit(settings.store or "")
    db_service = found[("Service", store.hostname or "")]
    assert db_service["spec"]["ports"][0]["port"] == store.port == 5432
    statefulset = found[("StatefulSet", store.hostname or "")]
    db_env = {e["name"]: e for e in statefulset["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (store.username, store.path) == (
        db_env["POSTGRES_USER"]["value"],
        "/" + db_env["POSTGRES_DB"]["value"],
    )
    db_secret = db_env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert found[("Secret", db_secret["name"])]["stringData"][db_secret["key"]] == store.password

    service = found[("Service", "fullstory-emulator")]
    assert service["spec"]["selector"] == labels
    (port,) = service["spec"]["ports"]
    (container_port,) = container["ports"]
    assert port["targetPort"] == container_port["name"] and container_port["containerPort"] == 8080
    assert settings.public_url == f"http://{service['metadata']['name']}"  # port 80
    assert port["port"] == 80
    assert container["startupProbe"]["httpGet"]["path"] == "/__emulator/health"
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001
    assert "useradd --create-home --uid 10001" in (ROOT / "Dockerfile").read_text()

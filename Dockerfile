# One image for every Pilothouse process; docker-compose.yml picks the command.
# Where no registry can be reached, build a local base first: scripts/build-base-image.sh, then
#   BASE_IMAGE=localbase/python:3.11 docker compose build
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
WORKDIR /opt/pilothouse
COPY pyproject.toml README.md ./
COPY kvstore ./kvstore
COPY apimachinery ./apimachinery
COPY apiserver ./apiserver
COPY apiclient ./apiclient
COPY scheduler ./scheduler
COPY controllers ./controllers
COPY kubelet ./kubelet
COPY proxy ./proxy
COPY pilot ./pilot
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -q .
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
ENTRYPOINT ["pilot"]

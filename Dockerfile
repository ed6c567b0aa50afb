# The pipe's image. BASE_IMAGE is any Debian-like image with python3 and its venv module:
# python:3.12-slim in releases, a local stand-in where Docker Hub is out of reach.
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

# A venv keeps the pipe's pinned dependencies apart from the base image's Python packages
# (and works on bases whose system pip refuses to install, PEP 668).
ENV VIRTUAL_ENV=/opt/pipe-venv \
    PATH=/opt/pipe-venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

COPY requirements.txt /pipe/requirements.txt
RUN python3 -m venv "$VIRTUAL_ENV" \
 && "$VIRTUAL_ENV/bin/pip" install --no-compile -r /pipe/requirements.txt \
 # pip and setuptools are only needed to install: drop them, and the caches they leave.
 && "$VIRTUAL_ENV/bin/python" -m pip uninstall --yes --quiet pip setuptools \
 && find "$VIRTUAL_ENV" -name '__pycache__' -type d -prune -exec rm -rf {} + \
 && rm -rf /root/.cache /tmp/* \
 # Byte-code compiled once here (a few MB) halves every run's start-up; "unchecked-hash"
 # keeps it valid whatever the files' timestamps, and nothing is written at run time.
 && "$VIRTUAL_ENV/bin/python" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$VIRTUAL_ENV"

COPY pipe.yml README.md LICENSE.txt /
COPY pipe /pipe/pipe
RUN python3 -m compileall -q --invalidation-mode unchecked-hash /pipe/pipe

ENV PYTHONPATH=/pipe
ENTRYPOINT ["python3", "-m", "pipe"]

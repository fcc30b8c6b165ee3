# The app's image: the serving requirements (no TensorFlow) and the model in app/model/, baked in.
#   docker build -t digit-recognizer:local .
#   docker run --rm -p 7860:7860 digit-recognizer:local      # then http://localhost:7860
# CI puts the Azure ML model into app/model/ before building, so the same file bakes either model.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3.11 -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# Behind a TLS-inspecting proxy, pass its CA bundle: --secret id=ca.crt,src=FILE (used, never stored).
RUN --mount=type=secret,id=ca.crt,target=/etc/ssl/certs/ca-certificates.crt \
    /opt/venv/bin/pip install --no-compile -r /tmp/requirements.txt \
 && /opt/venv/bin/pip uninstall --yes pip setuptools \
 && find /opt/venv -depth -type d \( -name tests -o -name __pycache__ \) -path "*/site-packages/*" -exec rm -rf {} +
COPY app /srv/app
# Compile once here: the root filesystem is read-only at run time, and this halves the start-up.
RUN /opt/venv/bin/python -m compileall -q /opt/venv /srv/app

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/venv /opt/venv
COPY --from=build /srv/app /srv/app
WORKDIR /srv
# /tmp is the one writable place (an emptyDir in Kubernetes): uploads, Gradio's and Matplotlib's caches.
# Users' corrections go only to a volume mounted for them and named by FEEDBACK_DIR (the Deployment's claim
# at /feedback). Empty here: the image alone says it keeps none, rather than fail to write them under /srv.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=7860 \
    HOME=/tmp \
    GRADIO_TEMP_DIR=/tmp/gradio \
    MPLCONFIGDIR=/tmp/matplotlib \
    FEEDBACK_DIR=""
USER 10001:10001
EXPOSE 7860
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/health', timeout=2)"]
CMD ["python", "-m", "app"]

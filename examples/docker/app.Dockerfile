# The example services (examples/microservices: front.py, back.py) with otel-xray, started by
# opentelemetry-instrument. One image for both; the command picks the service.
#
#   docker build -f examples/docker/app.Dockerfile -t otel-xray-example .     # from the repo root
#   docker run -e OTEL_SERVICE_NAME=back -e AWS_XRAY_DAEMON_ADDRESS=host.docker.internal:2000 \
#     -p 8080:8080 otel-xray-example flask --app back run
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The library first: it changes less often than the app, so this layer stays cached.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY otel_xray ./otel_xray
RUN pip install ".[fast]"

WORKDIR /app
COPY examples/microservices/requirements.txt ./
RUN pip install -r requirements.txt
COPY examples/microservices/front.py examples/microservices/back.py ./

RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin app
USER 10001

# The apps bind 127.0.0.1 when run as scripts; in a container they run under `flask run`, which
# reads these. OTEL_PYTHON_DISTRO=awsxray supplies the exporter/propagator/sampler defaults.
ENV FLASK_RUN_HOST=0.0.0.0 \
    FLASK_RUN_PORT=8080 \
    OTEL_PYTHON_DISTRO=awsxray
EXPOSE 8080
ENTRYPOINT ["opentelemetry-instrument"]
CMD ["flask", "--app", "front", "run"]

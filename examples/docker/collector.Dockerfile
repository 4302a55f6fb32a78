# otel-xray-collector: a drop-in for the X-Ray daemon (UDP/TCP 2000) with OTLP gRPC (4317), a
# SQLite store and the web console, optionally forwarding to AWS X-Ray.
#
#   docker build -f examples/docker/collector.Dockerfile -t otel-xray-collector .   # repo root
#   docker run -p 2000:2000/udp -p 2000:2000 -p 4317:4317 otel-xray-collector
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY otel_xray ./otel_xray
COPY collector ./collector
# Both distributions in one resolve, so the collector's otel-xray requirement is met locally.
# [postgres]: psycopg 3 for the shared PostgreSQL store (--db postgresql://...).
RUN pip install ./ "./collector[postgres]"

RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin collector \
    && mkdir -p /var/lib/otel-xray \
    && chown 10001:10001 /var/lib/otel-xray
USER 10001
VOLUME /var/lib/otel-xray

EXPOSE 2000/udp 2000/tcp 4317/tcp
ENTRYPOINT ["otel-xray-collector"]
# Inside a container the listeners must bind all interfaces (the defaults are 127.0.0.1).
CMD ["--udp", "0.0.0.0:2000", "--tcp", "0.0.0.0:2000", "--otlp", "0.0.0.0:4317", "--db", "/var/lib/otel-xray/traces.db"]

"""Every environment variable the library reads, named and documented here, with readers.

Readers take an ``environ`` mapping (``None`` means ``os.environ``), so that
``configure(environ=...)`` hands one mapping to every component it builds and a test never has
to touch the process environment. Components read their variables through these names; no
other module spells a variable's name. Values are read when a component is built (or, for the
detectors, when it detects), never per span.

Variables the OpenTelemetry SDK itself reads (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``
for ``Resource.create``, ``OTEL_BSP_*``...) keep the SDK's meaning and are read by the SDK.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping

from opentelemetry.environment_variables import OTEL_PROPAGATORS
from opentelemetry.sdk.environment_variables import (
    OTEL_RESOURCE_ATTRIBUTES,
    OTEL_TRACES_SAMPLER,
    OTEL_TRACES_SAMPLER_ARG,
)

from otel_xray.logs import RateLimitedLog
from otel_xray.wire import DaemonAddress

_logger = logging.getLogger("otel_xray.config")

# -- The X-Ray SDKs' variables, with the meaning they have there ------------------------------

#: Where segments go (UDP) and sampling rules come from (TCP): ``host:port``, ``[v6]:port`` or
#: ``tcp:host:port udp:host:port`` (grammar: :mod:`otel_xray.wire`); default 127.0.0.1:2000.
DAEMON_ADDRESS_ENV = "AWS_XRAY_DAEMON_ADDRESS"
#: ``false``: ``configure()`` installs nothing and the recorder functions do nothing.
SDK_ENABLED_ENV = "AWS_XRAY_SDK_ENABLED"
#: Overrides the name of every segment (the X-Ray SDKs' fixed segment name).
TRACING_NAME_ENV = "AWS_XRAY_TRACING_NAME"
#: ``LOG_ERROR`` (default), ``RUNTIME_ERROR`` or ``IGNORE_ERROR``: what recorder calls made
#: outside any span do.
CONTEXT_MISSING_ENV = "AWS_XRAY_CONTEXT_MISSING"
#: Comma-separated CloudWatch log groups for the segment's ``aws.cloudwatch_logs`` (X-Ray Java).
LOG_GROUP_ENV = "AWS_LOG_GROUP"

# -- Set by AWS platforms; read by the detectors, the propagator and configure() ----------------

LAMBDA_FUNCTION_ENV = "AWS_LAMBDA_FUNCTION_NAME"
LAMBDA_FUNCTION_VERSION_ENV = "AWS_LAMBDA_FUNCTION_VERSION"
LAMBDA_FUNCTION_MEMORY_ENV = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
LAMBDA_LOG_GROUP_ENV = "AWS_LAMBDA_LOG_GROUP_NAME"
LAMBDA_LOG_STREAM_ENV = "AWS_LAMBDA_LOG_STREAM_NAME"
#: The invocation's ``X-Amzn-Trace-Id`` on Lambda (read by ``XRayLambdaPropagator``).
LAMBDA_TRACE_HEADER_ENV = "_X_AMZN_TRACE_ID"
REGION_ENV = "AWS_REGION"
DEFAULT_REGION_ENV = "AWS_DEFAULT_REGION"
#: The EC2 instance metadata service (the AWS SDKs' names): another endpoint, or ``true`` to
#: never probe it.
EC2_METADATA_ENDPOINT_ENV = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
EC2_METADATA_DISABLED_ENV = "AWS_EC2_METADATA_DISABLED"
ECS_METADATA_V4_ENV = "ECS_CONTAINER_METADATA_URI_V4"
ECS_METADATA_V3_ENV = "ECS_CONTAINER_METADATA_URI"
KUBERNETES_SERVICE_HOST_ENV = "KUBERNETES_SERVICE_HOST"
KUBERNETES_SERVICE_PORT_ENV = "KUBERNETES_SERVICE_PORT"
#: The EKS cluster's name when the cluster-info config map cannot be read (downward API).
EKS_CLUSTER_NAME_ENV = "EKS_CLUSTER_NAME"
#: The pod's name (downward API); else ``HOSTNAME``, which Kubernetes sets to it.
K8S_POD_NAME_ENV = "K8S_POD_NAME"
HOSTNAME_ENV = "HOSTNAME"

# -- otel-xray's own ---------------------------------------------------------------------------

#: Which span processor carries spans to the exporter: ``xray`` (default), ``batch``, ``simple``.
PROCESSOR_ENV = "OTEL_XRAY_PROCESSOR"
#: The trace-aware processor's queue bound and streaming threshold.
MAX_QUEUE_SIZE_ENV = "OTEL_XRAY_MAX_QUEUE_SIZE"
STREAMING_THRESHOLD_ENV = "OTEL_XRAY_STREAMING_THRESHOLD"
#: ``false`` leaves SIGTERM alone; the flush bound in milliseconds (default 1000).
FLUSH_ON_SIGTERM_ENV = "OTEL_XRAY_FLUSH_ON_SIGTERM"
SIGTERM_TIMEOUT_ENV = "OTEL_XRAY_SIGTERM_FLUSH_TIMEOUT_MS"
#: Seconds each resource detector may spend (default 1, at most 30).
DETECTOR_TIMEOUT_ENV = "OTEL_XRAY_DETECTOR_TIMEOUT"
#: Files the detectors read, moved (tests, unusual hosts): Elastic Beanstalk's environment
#: file, the Kubernetes service-account directory, sysfs, the cgroup and mountinfo files.
BEANSTALK_CONF_ENV = "OTEL_XRAY_BEANSTALK_CONF"
K8S_SERVICEACCOUNT_DIR_ENV = "OTEL_XRAY_K8S_SERVICEACCOUNT_DIR"
SYSFS_ROOT_ENV = "OTEL_XRAY_SYSFS_ROOT"
CGROUP_PATH_ENV = "OTEL_XRAY_CGROUP_PATH"
MOUNTINFO_PATH_ENV = "OTEL_XRAY_MOUNTINFO_PATH"

# -- OpenTelemetry's, read here too ------------------------------------------------------------

#: The propagators ``configure()`` leaves alone when set; the distro sets its default.
PROPAGATORS_ENV = OTEL_PROPAGATORS
#: The sampler (and its argument) ``configure()`` uses when set, instead of X-Ray sampling.
SAMPLER_ENV = OTEL_TRACES_SAMPLER
SAMPLER_ARG_ENV = OTEL_TRACES_SAMPLER_ARG
#: Read to know whether the user set ``service.instance.id`` (then a detected one does not win).
RESOURCE_ATTRIBUTES_ENV = OTEL_RESOURCE_ATTRIBUTES

PROCESSORS = ("xray", "batch", "simple")
DEFAULT_SIGTERM_TIMEOUT_MILLIS = 1000
_TRUE = frozenset({"y", "yes", "t", "true", "on", "1"})
_FALSE = frozenset({"n", "no", "f", "false", "off", "0"})
#: A bad value is said once per process, however often it is read (recorder calls).
_bad_value_log = RateLimitedLog(_logger, interval=math.inf)


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def env_text(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The variable's value without surrounding blanks; ``""`` when unset."""
    return _environ(environ).get(name, "").strip()


def explicit_or_env(
    explicit: str | None, name: str, default: str, environ: Mapping[str, str] | None = None
) -> str:
    """A constructor argument first (tests, code), then the variable, then the default."""
    if explicit is not None:
        return explicit
    return env_text(name, environ) or default


def sdk_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """``AWS_XRAY_SDK_ENABLED`` as the X-Ray SDK reads it: unknown values warn and mean enabled."""
    value = _environ(environ).get(SDK_ENABLED_ENV)
    if value is None or value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    _bad_value_log.warning(
        "%s=%r is not a boolean; tracing stays enabled",
        SDK_ENABLED_ENV,
        value,
        key=f"{SDK_ENABLED_ENV}={value}",
    )
    return True


def env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """A boolean variable read like ``AWS_XRAY_SDK_ENABLED``: unknown values warn, mean default."""
    value = environ.get(name)
    if value is None or not value.strip():
        return default
    word = value.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    _logger.warning("%s=%r is not a boolean; using %s", name, value, str(default).lower())
    return default


def env_int(environ: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    """A whole-number variable; a typo warns and means the default rather than failing."""
    value = environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        number = int(value.strip())
        if number < minimum:
            raise ValueError(f"below {minimum}")
    except ValueError:
        _logger.warning(
            "%s=%r is not a whole number >= %d; using %d", name, value, minimum, default
        )
        return default
    return number


def on_lambda(environ: Mapping[str, str] | None = None) -> bool:
    return bool(_environ(environ).get(LAMBDA_FUNCTION_ENV))


def processor_kind(value: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """``value``, else ``OTEL_XRAY_PROCESSOR``, else ``xray``; an unknown variable value warns
    (an unknown argument raises)."""
    if value is not None:
        if value not in PROCESSORS:
            raise ValueError(f"processor={value!r}: expected one of {', '.join(PROCESSORS)}")
        return value
    env = _environ(environ)
    chosen = (env.get(PROCESSOR_ENV) or "").strip().lower()
    if not chosen:
        return "xray"
    if chosen not in PROCESSORS:
        _logger.warning(
            "%s=%r is not one of %s; using xray", PROCESSOR_ENV, chosen, ", ".join(PROCESSORS)
        )
        return "xray"
    return chosen


def sigterm_flush_settings(
    enabled: bool | None = None,
    timeout_millis: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[bool, int]:
    """Whether to flush on SIGTERM (``OTEL_XRAY_FLUSH_ON_SIGTERM``, default on) and the bound
    in milliseconds (``OTEL_XRAY_SIGTERM_FLUSH_TIMEOUT_MS``, default 1000); arguments win."""
    env = _environ(environ)
    if enabled is None:
        enabled = env_bool(env, FLUSH_ON_SIGTERM_ENV, True)
    if timeout_millis is None:
        timeout_millis = env_int(env, SIGTERM_TIMEOUT_ENV, DEFAULT_SIGTERM_TIMEOUT_MILLIS)
    return enabled, timeout_millis


def daemon_address(
    value: str | None = None, environ: Mapping[str, str] | None = None
) -> DaemonAddress:
    """The explicit value, else ``AWS_XRAY_DAEMON_ADDRESS``, else the default address.

    The exporter and the remote sampler both ask here, so one ``environ`` sends segments and
    polls sampling rules to the same daemon.

    An invalid explicit value is a bug in the calling code: ``ValueError``. An invalid variable
    is a deployment typo, which must not take the application down: one ERROR line names the
    variable and its value, and the default address is used, as when the variable is unset
    (said once per value, though the exporter and the sampler both read it).
    """
    if value is not None:
        return DaemonAddress.parse(value, source="daemon_address")
    env = _environ(environ)
    from_env = env.get(DAEMON_ADDRESS_ENV)
    if from_env is None or not from_env.strip():
        return DaemonAddress.default()
    try:
        return DaemonAddress.parse(from_env, source=DAEMON_ADDRESS_ENV)
    except ValueError as exc:
        default = DaemonAddress.default()
        _bad_value_log.log(
            logging.ERROR,
            "%s; using the default %s instead",
            exc,
            default.udp,
            key=f"{DAEMON_ADDRESS_ENV}={from_env}",
        )
        return default


def default_propagator_names(*, lambda_: bool = False) -> str:
    """``tracecontext,baggage,awsxray`` (``awsxray-lambda`` on Lambda): both headers are read
    and written; when both arrive, the later extractor wins, so ``X-Amzn-Trace-Id`` does (see
    docs/decisions.md, "Propagators: the X-Ray header wins")."""
    return "tracecontext,baggage," + ("awsxray-lambda" if lambda_ else "awsxray")


def context_missing(
    default: str, choices: frozenset[str], environ: Mapping[str, str] | None = None
) -> str:
    """``AWS_XRAY_CONTEXT_MISSING`` upper-cased when it is one of ``choices``, else ``default``
    (an unknown value is said once)."""
    raw = _environ(environ).get(CONTEXT_MISSING_ENV)
    if raw is None or not raw.strip():
        return default
    name = raw.strip().upper()
    if name in choices:
        return name
    _bad_value_log.warning(
        "%s=%r is not one of %s; using %s",
        CONTEXT_MISSING_ENV,
        raw,
        sorted(choices),
        default,
        key=f"{CONTEXT_MISSING_ENV}={raw}",
    )
    return default


def log_group_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """``AWS_LOG_GROUP`` split at commas."""
    return [g.strip() for g in env_text(LOG_GROUP_ENV, environ).split(",") if g.strip()]


def detector_timeout(
    explicit: float | None, default: float, maximum: float, environ: Mapping[str, str] | None = None
) -> float:
    """The detectors' budget: the argument, else ``OTEL_XRAY_DETECTOR_TIMEOUT``, else
    ``default``; not a positive number means ``default``, more than ``maximum`` is cut."""
    if explicit is not None:
        value = float(explicit)
    else:
        raw = env_text(DETECTOR_TIMEOUT_ENV, environ)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            _logger.debug("ignoring %s=%r: not a number of seconds", DETECTOR_TIMEOUT_ENV, raw)
            return default
    if not value > 0.0:
        return default
    return min(value, maximum)

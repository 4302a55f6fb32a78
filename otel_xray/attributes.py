"""The span attributes with an X-Ray meaning: written by the recorder functions and the remote
sampler, read by the translator (and by the collector's OTLP forwarding, which writes them back
from segments). One name each, so a writer and its reader cannot drift apart.
"""

from __future__ import annotations

#: The attribute keys ``put_annotation`` made annotations (a list of strings).
ANNOTATIONS_ATTRIBUTE = "aws.xray.annotations"
#: ``aws.xray.metadata.<namespace>``: a JSON object of that namespace's metadata.
METADATA_ATTRIBUTE_PREFIX = "aws.xray.metadata."
#: The segment's ``user`` (``set_user``); OpenTelemetry's ``enduser.id``.
USER_ATTRIBUTE = "enduser.id"
#: The centralized rule that sampled the trace (``XRayRemoteSampler``); segments carry it as
#: ``aws.xray.sampling_rule_name``, where the X-Ray SDKs put it.
SAMPLING_RULE_ATTRIBUTE = "aws.xray.sampling_rule_name"

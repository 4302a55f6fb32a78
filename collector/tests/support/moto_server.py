"""moto's X-Ray in a thread on 127.0.0.1, standing in for AWS X-Ray (PutTraceSegments & reads)."""

from __future__ import annotations

import urllib.request
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

#: moto accepts any key pair, but only SigV4-signed requests (it picks the service from the scope).
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class MotoXRay:
    def __init__(self) -> None:
        # moto binds 0.0.0.0 unless told otherwise.
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def client(self, region: str = "us-east-1") -> Any:
        return boto3.session.Session().client(
            "xray",
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def reset(self) -> None:
        """moto keeps its backends per process: wipe them so tests cannot see each other."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def close(self) -> None:
        self.reset()
        self._server.stop()
        # ThreadedMotoServer.stop() shuts the loop down but leaves the listening socket open.
        inner = getattr(self._server, "_server", None)
        if inner is not None:
            inner.server_close()

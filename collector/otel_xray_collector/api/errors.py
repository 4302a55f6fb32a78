"""X-Ray-shaped API errors: what boto3 turns into ``ClientError`` with the right code."""

from __future__ import annotations


class ApiError(Exception):
    """An error answered as X-Ray does: HTTP status, ``x-amzn-ErrorType`` header and JSON body.

    ``error_type`` is the X-Ray exception name (``InvalidRequestException``,
    ``ThrottledException``, ``RuleLimitExceededException``...), which botocore reads as the
    error code.
    """

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def body(self) -> dict[str, str]:
        return {"__type": self.error_type, "message": self.message, "Message": self.message}


def invalid_request(message: str) -> ApiError:
    return ApiError(400, "InvalidRequestException", message)


def throttled(message: str = "Rate exceeded") -> ApiError:
    return ApiError(429, "ThrottledException", message)

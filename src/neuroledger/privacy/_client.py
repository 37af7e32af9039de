"""A client of the access gateway: signs each request with the identity's key and decrypts answers."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount

from neuroledger._fs import atomic_writer
from neuroledger.errors import AccessDeniedError, PrivacyError
from neuroledger.privacy import age
from neuroledger.privacy._requests import Domain, new_request, sign_request

__all__ = ["GatewayClient"]


class GatewayClient:
    """Requests to one gateway on behalf of one identity."""

    def __init__(self, url: str, *, identity: str, account: LocalAccount, domain: Domain,
                 timeout: float = 60.0) -> None:  # fmt: skip
        if not url.startswith(("http://", "https://")):
            raise PrivacyError(f"gateway URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self.identity = identity
        self.account = account
        self.domain = domain
        # A refused connection is retried with backoff for a few seconds (the request was
        # never sent, so this is safe): a gateway started just before, in the background,
        # is still binding its port.
        self.http = httpx.Client(timeout=timeout, transport=httpx.HTTPTransport(retries=5))

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def signed(self, asset: str, action: str, purpose: str, body: bytes = b"",
               **extra: Any) -> dict[str, Any]:  # fmt: skip
        """A signed request body for ``action`` on ``asset``."""
        request = new_request(asset, self.identity, action, purpose, body=body)
        return {
            "request": request.to_json(),
            "signature": sign_request(request, self.account, self.domain),
            **extra,
        }

    def _post(self, path: str, payload: dict[str, Any]) -> httpx.Response:
        try:
            response = self.http.post(self.url + path, content=json.dumps(payload))
        except httpx.HTTPError as exc:
            raise PrivacyError(
                f"the gateway at {self.url} does not answer ({exc}); is it running?"
            ) from None
        _raise_for_refusal(response)
        return response

    def health(self) -> dict[str, Any]:
        """The gateway's chain, contract and owner."""
        try:
            return dict(self.http.get(self.url + "/v1/health").json())
        except (httpx.HTTPError, ValueError) as exc:
            raise PrivacyError(
                f"the gateway at {self.url} does not answer ({exc}); is it running?"
            ) from None

    def keywrap(self, asset: str, purpose: str) -> bytes:
        """The age header that wraps ``asset``'s file key for this identity."""
        return self._post("/v1/access", self.signed(asset, "keywrap", purpose)).content

    def download(self, asset: str, purpose: str, out: Path, *, private: bytes | None = None) -> int:
        """Fetch the asset's age file into ``out``; decrypt it when ``private`` is given."""
        payload = self.signed(asset, "download", purpose)
        with self.http.stream(
            "POST", self.url + "/v1/access", content=json.dumps(payload)
        ) as response:
            if response.status_code >= 400:
                response.read()
                _raise_for_refusal(response)
            if private is None:
                with atomic_writer(out) as dst:
                    size = 0
                    for piece in response.iter_bytes(1 << 20):
                        dst.write(piece)
                        size += len(piece)
                return size
            with atomic_writer(out) as dst:
                return age.decrypt_stream(
                    io.BufferedReader(_IterReader(response.iter_bytes(1 << 20)), 1 << 20),
                    dst,
                    private,
                )

    def submit_job(self, dataset: str, purpose: str, algorithm: bytes) -> dict[str, Any]:
        """Submit ``algorithm`` to run on ``dataset``; return the job record."""
        payload = self.signed(dataset, "job-submit", purpose, algorithm,
                              algorithm=base64.b64encode(algorithm).decode())  # fmt: skip
        return dict(self._post("/v1/jobs", payload).json())

    def job(self, job_id: str, dataset: str, purpose: str) -> dict[str, Any]:
        """The job's record."""
        payload = self.signed(dataset, "job-status", purpose, job_id.encode())
        return dict(self._post(f"/v1/jobs/{job_id}", payload).json())

    def wait(
        self, job_id: str, dataset: str, purpose: str, timeout: float = 300.0
    ) -> dict[str, Any]:
        """Poll until the job is finished."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id, dataset, purpose)
            if job["status"] not in ("queued", "running"):
                return job
            if time.monotonic() > deadline:
                raise PrivacyError(f"job {job_id} is still {job['status']} after {timeout:g} s")
            time.sleep(0.2)

    def output(self, job_id: str, dataset: str, purpose: str, name: str, private: bytes) -> bytes:
        """A released output, decrypted with this identity's X25519 key."""
        payload = self.signed(dataset, "job-result", purpose, f"{job_id}/{name}".encode())
        sealed = self._post(f"/v1/jobs/{job_id}/outputs/{name}", payload).content
        plain = io.BytesIO()
        age.decrypt_stream(io.BytesIO(sealed), plain, private)
        return plain.getvalue()


def _raise_for_refusal(response: httpx.Response) -> None:
    """Raise :class:`AccessDeniedError` with the gateway's reason for a 4xx/5xx answer."""
    if response.status_code < 400:
        return
    try:
        reason = response.json().get("error", response.text)
    except ValueError:
        reason = response.text
    raise AccessDeniedError(f"the gateway refused ({response.status_code}): {reason}")


class _IterReader(io.RawIOBase):
    """A binary file over an iterator of byte strings (for streaming decryption)."""

    def __init__(self, pieces: Any) -> None:
        self._pieces = iter(pieces)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._pieces)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

"""A ``requests.Session`` that remembers what a client library sent, so the tests can assert on
the exact request shape (and bug reports can quote it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

import jwt
import requests

SECRET_FIELDS = {"client_secret", "client_assertion", "assertion", "subject_token", "actor_token"}


@dataclass
class Sent:
    method: str
    url: str
    form: dict
    headers: dict
    status: int
    body: str

    def assertion_header(self) -> dict:
        return jwt.get_unverified_header(self.form["client_assertion"])

    def assertion_claims(self) -> dict:
        return jwt.decode(self.form["client_assertion"], options={"verify_signature": False})

    def redacted(self) -> str:
        form = {k: ("<elided>" if k in SECRET_FIELDS else v) for k, v in self.form.items()}
        auth = "Authorization: Basic <elided>; " if "Authorization" in self.headers else ""
        body = re.sub(r'"(access_token|refresh_token|id_token)":"[^"]*"', r'"\1":"<elided>"', self.body)
        return f"{self.method} {self.url} {auth}form={form} -> {self.status} {body[:600]}"


def _form_of(data) -> dict:
    if data is None:
        return {}
    if isinstance(data, dict):
        return {k: v for k, v in data.items()}
    if isinstance(data, bytes):
        data = data.decode()
    if isinstance(data, str):
        return dict(parse_qsl(data, keep_blank_values=True))
    return dict(data)


class RecordingSession(requests.Session):
    def __init__(self, verify: str):
        super().__init__()
        self.verify = verify
        self.sent: list[Sent] = []

    def request(self, method, url, *args, **kwargs):
        resp = super().request(method, url, *args, **kwargs)
        req = resp.request
        body = req.body
        form = _form_of(body) if method.upper() == "POST" else {}
        self.sent.append(
            Sent(method.upper(), url, form, dict(req.headers), resp.status_code, resp.text)
        )
        return resp

    def posts(self) -> list[Sent]:
        return [s for s in self.sent if s.method == "POST"]

    def last_post(self) -> Sent:
        return self.posts()[-1]

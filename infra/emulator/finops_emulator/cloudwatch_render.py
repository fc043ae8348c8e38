"""GetMetricData paging tokens and the Query-protocol response renderer.

Tokens are stateless: the offset of the next point plus a fingerprint of the
request, which must be repeated unchanged (otherwise 400 InvalidNextToken).

Query-protocol GetMetricData answers are rendered directly, with the same
bytes as moto's generic serializer (checked by the tests), because that
serializer needs about 14 us per timestamp: a full 100,800-point page took
1.4 s of the emulator's time.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone


class _InvalidNextToken(Exception):
    pass


def _fingerprint(queries: list, start: datetime, end: datetime, scan_by: str) -> str:
    blob = json.dumps([queries, str(start), str(end), scan_by], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _encode_token(offset: int, fp: str) -> str:
    raw = json.dumps({"o": offset, "f": fp}, separators=(",", ":")).encode()
    return "fo1." + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, fp: str) -> int:
    try:
        if not token.startswith("fo1."):
            raise ValueError
        body = token[4:]
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        obj = json.loads(raw)
        offset = int(obj["o"])
        if obj["f"] != fp or offset < 0:
            raise ValueError
        return offset
    except Exception as exc:  # noqa: BLE001 - any malformed token is invalid
        raise _InvalidNextToken from exc


_XMLNS = "http://monitoring.amazonaws.com/doc/2010-08-01/"


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml_el(name: str, text: str) -> str:
    return f"<{name}>{_xml_escape(text)}</{name}>" if text else f"<{name}/>"


def _xml_time(ts: datetime) -> str:
    # same text as moto's serializer: naive UTC, "Z", microseconds only if set
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc)
    if ts.microsecond:
        return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def render_get_metric_data_xml(results: list[dict], next_token: str | None) -> str:
    """GetMetricData response body for the Query protocol (what the Rust SDK
    1.99 speaks), byte-identical to moto's generic serializer output (checked
    by test_server.py) but about 20 times faster on large pages."""
    out = [f'<GetMetricDataResponse xmlns="{_XMLNS}"><GetMetricDataResult>']
    if results:
        out.append("<MetricDataResults>")
        for r in results:
            out.append("<member>")
            out.append(_xml_el("Id", r["Id"]))
            if r.get("Label") is not None:
                out.append(_xml_el("Label", r["Label"]))
            ts = r["Timestamps"]
            if ts:
                out.append("<Timestamps><member>")
                out.append("</member><member>".join(map(_xml_time, ts)))
                out.append("</member></Timestamps>")
            else:
                out.append("<Timestamps/>")
            vals = r["Values"]
            if vals:
                out.append("<Values><member>")
                out.append("</member><member>".join([str(float(v)) for v in vals]))
                out.append("</member></Values>")
            else:
                out.append("<Values/>")
            out.append(f"<StatusCode>{r['StatusCode']}</StatusCode></member>")
        out.append("</MetricDataResults>")
    else:
        out.append("<MetricDataResults/>")
    if next_token:
        out.append(_xml_el("NextToken", next_token))
    out.append("</GetMetricDataResult><ResponseMetadata><RequestId>request-id</RequestId>"
               "</ResponseMetadata></GetMetricDataResponse>")
    return "".join(out)

#!/usr/bin/python3
"""An outsider's check of a delivery status notification (RFC 3464 inside RFC 6522
multipart/report) read from stdin: Python's own `email` package parses it under
email.policy.strict and email.policy.default, and every defect it notes is a problem, as are
lines over 998 octets or not ended by CRLF, a missing or wrong MIME boundary, 8-bit octets in a
part (or a message) that does not declare 8bit, and missing or malformed report fields
(Reporting-MTA, Arrival-Date, Final-Recipient, Action, Status, Diagnostic-Code). A header block
with 8-bit octets must be UTF-8 (RFC 6532 §3): it is read as such, and a UTF-8 local part (which
Python notes as NonASCIILocalPartDefect) is no problem there. A report about an SMTPUTF8 original
(RFC 6533) has a message/global-delivery-status part, read here as RFC 3464 fields in UTF-8, and
returns message/global or message/global-headers, which RFC 6532 §3.7 lets take base64 or
quoted-printable: Python reads any message/* body as a message whatever its encoding, so such a part
is checked decoded (the raw report still for line lengths and 8-bit octets). Prints one JSON object:
{"problems": [...], "parts": [content types], "to": [addr-spec of To:],
"message": {per-message field: value}, "recipients": [{field: value}],
"returned": {"type", "encoding", "text" (decoded, UTF-8)} or null}."""
import base64
import binascii
import quopri
import email
import email.errors
import email.parser
import email.policy
import email.utils
import json
import re
import sys

ACTIONS = {"failed", "delayed", "delivered", "relayed", "expanded"}


def main():
    raw = sys.stdin.buffer.read()
    problems = []
    lines = raw.split(b"\r\n")
    if lines[-1] != b"":
        problems.append("does not end with CRLF")
    for i, line in enumerate(lines):
        if len(line) > 998:
            problems.append(f"line {i + 1} has {len(line)} octets")
        if b"\r" in line or b"\n" in line:
            problems.append(f"line {i + 1} has a bare CR or LF")
    head = raw.partition(b"\r\n\r\n")[0]
    utf8_head = None
    if any(b >= 0x80 for b in head):
        try:
            utf8_head = head.decode("utf-8")
        except UnicodeDecodeError as err:
            problems.append(f"8-bit header block that is not UTF-8: {err}")
    # Its fields, each checked as strict would (the message itself is checked from the bytes).
    top = None if utf8_head is None else email.parser.Parser(
        policy=email.policy.default).parsestr(utf8_head + "\r\n\r\n", True)
    for name, value in top.items() if top is not None else ():
        for d in getattr(value, "defects", ()):
            if not isinstance(d, email.errors.NonASCIILocalPartDefect):
                problems.append(f"{name}: {d!r}")
    view, returned = decoded_view(raw, problems)
    for policy in (email.policy.strict, email.policy.default):
        try:
            msg = email.message_from_bytes(view, policy=policy)
            # The report's own parts; the returned original is what the sender wrote.
            parts = msg.get_payload() if msg.is_multipart() else []
            for part in [msg, *parts[:2]]:
                for d in part.defects:
                    problems.append(f"{part.get_content_type()}: {d!r}")
                # An RFC 6532 header block was checked as UTF-8 above.
                items = [] if part is msg and utf8_head is not None else part.items()
                for name, value in items:
                    for d in getattr(value, "defects", ()):
                        problems.append(f"{name}: {d!r}")
        except Exception as err:  # strict raises on the first defect
            problems.append(f"{policy.__class__.__name__} parse: {err!r}")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    to = (msg if top is None else top)["To"]
    out = {"problems": problems, "parts": [], "recipients": [], "message": {},
           "to": [a.addr_spec for a in to.addresses] if to is not None else [],
           "returned": returned}
    if msg.get_content_type() != "multipart/report":
        problems.append(f"top type {msg.get_content_type()}")
        return out
    boundary = msg.get_boundary()
    if msg.get_param("report-type") != "delivery-status":
        problems.append("report-type is not delivery-status")
    if not boundary:
        problems.append("no boundary")
        return out
    check_8bit(raw, msg, boundary.encode(), problems)
    parts = msg.get_payload()
    out["parts"] = [p.get_content_type() for p in parts]
    if len(parts) < 2 or parts[0].get_content_type() != "text/plain":
        problems.append("the first part is not the text/plain explanation")
    status = [p for p in parts if p.get_content_type() in (
        "message/delivery-status", "message/global-delivery-status")]
    if len(status) != 1:
        problems.append("not exactly one delivery-status part")
        return out
    if status[0].get_content_type() == "message/global-delivery-status":
        blocks = global_blocks(raw, boundary.encode(), problems)
    else:
        blocks = status[0].get_payload()
    if len(blocks) < 2:
        problems.append("no recipient block")
        return out
    per_message = blocks[0]
    out["message"] = {k: unfold(str(v)) for k, v in per_message.items()}
    if not re.fullmatch(r"dns;\s*\S+", str(per_message["Reporting-MTA"] or "")):
        problems.append(f"Reporting-MTA {per_message['Reporting-MTA']!r}")
    arrival = per_message["Arrival-Date"]
    if arrival is not None:
        try:
            email.utils.parsedate_to_datetime(str(arrival))
        except (TypeError, ValueError) as err:
            problems.append(f"Arrival-Date {str(arrival)!r}: {err}")
    for block in blocks[1:]:
        fields = {k: unfold(str(v)) for k, v in block.items()}
        out["recipients"].append(fields)
        final = fields.get("Final-Recipient", "")
        if not re.fullmatch(r"(?i)(rfc822|utf-8);\s*[\x21-\x7e]+@[\x21-\x7e]+", final):
            problems.append(f"Final-Recipient {final!r}")
        action = fields.get("Action", "").lower()
        if action not in ACTIONS:
            problems.append(f"Action {action!r}")
        st = fields.get("Status", "")
        if not re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", st):
            problems.append(f"Status {st!r}")
        elif action == "failed" and not st.startswith("5"):
            problems.append(f"failed with Status {st}")
        elif action == "delayed" and not st.startswith("4"):
            problems.append(f"delayed with Status {st}")
        diag = fields.get("Diagnostic-Code")
        if diag is not None and not re.fullmatch(r"smtp;\s*\d{3}[ -].*", diag):
            problems.append(f"Diagnostic-Code {diag!r}")
    return out


def raw_parts(raw, boundary):
    """(start, end) of each body part of the top multipart: its header block and body."""
    out = []
    delimiter = b"\r\n--" + boundary
    at = raw.find(delimiter)
    while at >= 0:
        start = at + len(delimiter)
        if raw[start:start + 2] == b"--":
            break
        start += 2  # the CRLF after the delimiter
        nxt = raw.find(delimiter, start)
        out.append((start, len(raw) if nxt < 0 else nxt))
        at = nxt
    return out


def top_boundary(raw):
    msg = email.message_from_bytes(raw.partition(b"\r\n\r\n")[0] + b"\r\n\r\n")
    b = msg.get_boundary()
    return None if b is None else b.encode()


def decoded_view(raw, problems):
    """The report with a base64 or quoted-printable message/global(-headers) part decoded (and
    declared 8bit), and that part's decoded text, or the report as it is."""
    boundary = top_boundary(raw)
    if boundary is None:
        return raw, None
    for start, end in raw_parts(raw, boundary):
        head, sep, body = raw[start:end].partition(b"\r\n\r\n")
        part = email.message_from_bytes(head + b"\r\n\r\n")
        ctype = part.get_content_type()
        if ctype not in ("message/global", "message/global-headers", "message/rfc822",
                         "text/rfc822-headers"):
            continue
        cte = str(part.get("Content-Transfer-Encoding", "7bit")).lower()
        returned = {"type": ctype, "encoding": cte}
        if cte in ("base64", "quoted-printable"):
            if ctype in ("message/rfc822",):
                problems.append(f"{ctype} part encoded {cte} (RFC 2046 §5.2.1)")
            try:
                decoded = (base64.b64decode(body, validate=False) if cte == "base64"
                           else quopri.decodestring(body))
            except (binascii.Error, ValueError) as err:
                problems.append(f"{ctype} part: bad {cte}: {err}")
                return raw, returned
            if not decoded.endswith(b"\r\n"):
                decoded += b"\r\n"
            new_head = re.sub(rb"(?im)^Content-Transfer-Encoding:[^\r\n]*",
                              b"Content-Transfer-Encoding: 8bit", head)
            view = raw[:start] + new_head + sep + decoded + raw[end:]
        else:
            decoded, view = body, raw
        try:
            returned["text"] = decoded.decode("utf-8")
        except UnicodeDecodeError as err:
            problems.append(f"{ctype} part is not UTF-8: {err}")
        return view, returned
    return raw, None


def global_blocks(raw, boundary, problems):
    """RFC 6533 message/global-delivery-status: RFC 3464 field blocks, UTF-8 allowed."""
    for start, end in raw_parts(raw, boundary):
        head, _, body = raw[start:end].partition(b"\r\n\r\n")
        part = email.message_from_bytes(head + b"\r\n\r\n")
        if part.get_content_type() != "message/global-delivery-status":
            continue
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as err:
            problems.append(f"message/global-delivery-status is not UTF-8: {err}")
            return []
        blocks = []
        for block in re.split(r"\r\n\r\n", text.strip("\r\n")):
            fields = email.parser.Parser(policy=email.policy.strict).parsestr(
                block + "\r\n\r\n", True)
            for name, value in fields.items():
                for d in getattr(value, "defects", ()):
                    problems.append(f"{name}: {d!r}")
            blocks.append(fields)
        return blocks
    return []


def unfold(value):
    return re.sub(r"\r?\n[ \t]+", " ", value).strip()


def check_8bit(raw, msg, boundary, problems):
    """8-bit octets must sit in a part that says 8bit (RFC 2045 §6), in a message that does."""
    # Octets of the header block are RFC 6532's (UTF-8 under SMTPUTF8), not the body's.
    if not any(b >= 0x80 for b in raw.partition(b"\r\n\r\n")[2]):
        return
    if str(msg.get("Content-Transfer-Encoding", "7bit")).lower() not in ("8bit", "binary"):
        problems.append("8-bit octets in a message that does not declare 8bit")
    pieces = raw.split(b"\r\n--" + boundary)
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        head, _, body = piece.partition(b"\r\n\r\n")
        if not any(b >= 0x80 for b in body):
            continue
        part = email.message_from_bytes(head.lstrip(b"\r\n") + b"\r\n\r\n")
        cte = str(part.get("Content-Transfer-Encoding", "7bit")).lower()
        if cte not in ("8bit", "binary"):
            problems.append(f"8-bit octets in a {part.get_content_type()} part declared {cte}")


if __name__ == "__main__":
    print(json.dumps(main()))

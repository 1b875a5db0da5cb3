#!/usr/bin/python3
"""Checks messages a loopback SMTP server saved, with an implementation independent of ipwarm.

Usage: verify.py EXPECT.json MAILDIR

EXPECT.json: {"records": {"SEL._domainkey.DOMAIN.": "v=DKIM1; k=...; p=..."},
              "messages": {"<message-id>": {"subject": str, "from_name": str, "text": str,
                                            "html": str or null, "algorithm": "rsa-sha256",
                                            "list_unsubscribe": str or null}}}

For every saved message: Debian's python3-dkim (dkim.verify, with a DNS function that serves
the records above) must accept its signature, and must reject copies with a changed body, a
changed Subject and an added From; every header line is 7-bit and within 78 columns, every
line within 998 octets; the Subject and the From display name decode (RFC 2047, Python's
email package) to the expected text; the text and HTML parts decode to the expected bodies;
List-Unsubscribe and List-Unsubscribe-Post are present and named in h=; Message-IDs are
unique. Prints one line per check ("ok ..." / "FAIL ...") and "N passed, M failed"; exits 1
on any failure.
"""
import email
import email.policy
import json
import os
import re
import sys
from email.header import decode_header, make_header

import dkim

passed = 0
failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("ok " + what)
    else:
        failed += 1
        print("FAIL " + what)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        expect = json.load(f)
    records = {k.lower().encode(): v.encode() for k, v in expect["records"].items()}

    def dnsfunc(name, timeout=5):
        key = name.lower() if isinstance(name, bytes) else name.lower().encode()
        if not key.endswith(b"."):
            key += b"."
        return records.get(key)

    maildir = sys.argv[2]
    files = sorted(os.listdir(maildir)) if os.path.isdir(maildir) else []
    seen_ids = set()
    for name in files:
        with open(os.path.join(maildir, name), "rb") as f:
            raw = f.read()
        head, _, body = raw.partition(b"\r\n\r\n")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        mid = str(msg["Message-ID"]).strip()
        exp = expect["messages"].get(mid)
        check(exp is not None, "%s: Message-ID %s is one we sent" % (name, mid))
        if exp is None:
            continue
        check(mid not in seen_ids, "%s: Message-ID is unique" % name)
        seen_ids.add(mid)
        tag = "%s (%s)" % (name, exp["algorithm"])

        check(dkim.verify(raw, dnsfunc=dnsfunc), "%s: python3-dkim verifies it" % tag)
        tampered_body = head + b"\r\n\r\n" + body.replace(b"\r\n", b"\r\nX", 1)
        check(not dkim.verify(tampered_body, dnsfunc=dnsfunc),
              "%s: a changed body fails" % tag)
        tampered_subject = re.sub(rb"\r\nSubject: ", b"\r\nSubject: Re: ", raw, count=1)
        check(tampered_subject != raw and not dkim.verify(tampered_subject, dnsfunc=dnsfunc),
              "%s: a changed Subject fails" % tag)
        added_from = re.sub(rb"\r\nFrom: ", b"\r\nFrom: Mallory <m@evil.example>\r\nFrom: ",
                            raw, count=1)
        check(not dkim.verify(added_from, dnsfunc=dnsfunc), "%s: an added From fails" % tag)

        lines = raw.split(b"\r\n")
        check(all(len(l) <= 998 for l in lines), "%s: every line <= 998 octets" % tag)
        check(all(b < 0x80 for b in head), "%s: the header is 7-bit" % tag)
        long_lines = [l for l in head.split(b"\r\n") if len(l) > 78]
        check(not long_lines, "%s: header lines fold within 78 columns%s" %
              (tag, " (not %r)" % long_lines if long_lines else ""))
        check(b"\n" not in raw.replace(b"\r\n", b""), "%s: no bare LF" % tag)

        sig = str(msg["DKIM-Signature"])
        tags = dict((k.strip(), v) for k, _, v in
                    (t.partition("=") for t in re.sub(r"\s+", "", sig).split(";") if t))
        h = tags.get("h", "").lower().split(":")
        check(tags.get("a") == exp["algorithm"], "%s: a=%s" % (tag, tags.get("a")))
        check(tags.get("c") == "relaxed/relaxed", "%s: c=relaxed/relaxed" % tag)
        for hn in ("from", "to", "subject", "date", "message-id", "mime-version",
                   "content-type"):
            check(hn in h, "%s: %s is signed" % (tag, hn))
        check(h.count("from") >= 2, "%s: From is over-signed" % tag)

        raw_subject = msg.get("Subject", failobj=None)
        subject = str(make_header(decode_header(_field(head, b"Subject"))))
        check(subject == exp["subject"], "%s: Subject decodes to %r (got %r)" %
              (tag, exp["subject"], subject))
        check(str(raw_subject) == exp["subject"], "%s: email.policy agrees on the Subject" % tag)
        display = msg["From"].addresses[0].display_name
        check(display == exp["from_name"], "%s: From display name decodes to %r (got %r)" %
              (tag, exp["from_name"], display))

        text = msg.get_body(preferencelist=("plain",))
        # The parts are CRLF text on the wire; Python keeps the CRLF in what it decodes.
        got_text = text.get_content().replace("\r\n", "\n") if text is not None else None
        check(_same_body(got_text, exp["text"], msg),
              "%s: the text part decodes to the template text%s" %
              (tag, "" if _same_body(got_text, exp["text"], msg) else " (got %r)" % got_text))
        if exp.get("html") is not None:
            html = msg.get_body(preferencelist=("html",))
            got_html = html.get_content().replace("\r\n", "\n") if html is not None else None
            check(_same_body(got_html, exp["html"], msg),
                  "%s: the HTML part decodes to the template%s" %
                  (tag, "" if _same_body(got_html, exp["html"], msg) else " (got %r)" % got_html))
        if exp.get("list_unsubscribe") is not None:
            lu = re.sub(r"\s+", " ", str(msg.get("List-Unsubscribe", "")))
            check(lu == exp["list_unsubscribe"], "%s: List-Unsubscribe is %r (got %r)" %
                  (tag, exp["list_unsubscribe"], lu))
            check(str(msg.get("List-Unsubscribe-Post", "")) == "List-Unsubscribe=One-Click",
                  "%s: List-Unsubscribe-Post is One-Click" % tag)
            check("list-unsubscribe" in h and "list-unsubscribe-post" in h,
                  "%s: List-Unsubscribe and List-Unsubscribe-Post are signed" % tag)
    check(len(seen_ids) == len(expect["messages"]),
          "all %d messages arrived (%d did)" % (len(expect["messages"]), len(seen_ids)))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def _same_body(got, want, msg):
    """True if a decoded part is exactly the expected text, its last line break included
    (the composer puts the CRLF that RFC 2046 5.1.1 gives to the delimiter after it)."""
    return got is not None and got == want


def _field(head, name):
    """The value of the first field called name, unfolded (RFC 5322 2.2.3: CRLF removed)."""
    lines = head.split(b"\r\n")
    for i, l in enumerate(lines):
        if l.lower().startswith(name.lower() + b":"):
            value = l[len(name) + 1:]
            j = i + 1
            while j < len(lines) and lines[j][:1] in (b" ", b"\t"):
                value += lines[j]
                j += 1
            return value.decode("ascii").strip()
    return ""


if __name__ == "__main__":
    sys.exit(main())

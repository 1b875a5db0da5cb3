#!/usr/bin/python3
"""Turns the sandbox's one readable config file into what its servers read.

scripts/sandbox calls this; people edit config/sandbox/sandbox.yaml (its comments describe every
key). From that file it writes, into the sandbox directory:
  dnsmasq.conf   the DNS records (RFC 1035 zone data as dnsmasq options): the sender's PTR and
                 A records (forward-confirmed reverse DNS), SPF (RFC 7208), DKIM (RFC 6376) and
                 DMARC (RFC 7489) TXT records, a DNS block list zone that lists only the RFC 5782
                 test address 127.0.0.2, and each provider's MX (RFC 5321 section 5) and A record;
  smtpd.json     the listeners of tests/servers/smtpd.py, one per provider, with what each does
                 after its 250 (late bounces, complaint reports, seed copies) and where it
                 delivers them: the sandbox's Dovecot, over LMTP (RFC 2033); with a pool of
                 sender IPs (sender.pool), each IP's own rate and the IPs a provider defers
                 (defer_ips), as smtpd.py's per_source behaviour;
  dovecot/dovecot.conf, dovecot/passwd
                 the mailbox server: Dovecot with a config of its own (never the system's), IMAP
                 (STARTTLS offered, RFC 2595) and LMTP on loopback, the mailboxes in a
                 passwd-file (salted SHA-256 of the one password in DIR/imap.password), Maildir
                 under DIR/dovecot/mail, each junk folder marked \Junk (RFC 6154);
  mailboxes.tsv  one line per mailbox: address and junk folder (scripts/sandbox creates the
                 folder and lists the mailboxes);
  sandbox.env    shell assignments scripts/sandbox reads back (addresses, ports);
  listeners.tsv  one line per provider for `scripts/sandbox status`: name, address, MX, domains,
                 modes.

Usage: sandbox_render.py CONFIG DIR DKIM_PUBLIC_KEY_BASE64 CERT KEY
DIR/imap.password must exist (scripts/sandbox writes it). Exits 0 when everything is written, 1
with one sentence naming the key when the config is wrong.
"""
import base64
import grp
import hashlib
import json
import os
import pwd
import re
import sys

try:
    import yaml
except ImportError:
    sys.exit("sandbox: Debian's python3-yaml is needed (scripts/deps demo installs it)")

PROVIDER_KEYS = {"address", "mx", "domains", "rate_per_min", "throttle", "recipients",
                 "delay_ms", "modes", "greeting", "size", "starttls", "require_tls",
                 "late_bounce", "complain", "seeds", "defer_ips", "defer_reply"}
# What a provider does after its 250 (smtpd.py's keys of the same names), and their keys.
AFTER_KEYS = {
    "late_bounce": {"regex", "every", "delay_ms", "format", "status", "diagnostic"},
    "complain": {"regex", "every", "delay_ms", "to", "feedback_type", "user_agent", "from"},
    "seeds": {"regex", "junk_every", "junk_regex", "junk_folder", "delay_ms"},
}
BOUNCE_FORMATS = ("dsn", "microsoft", "microsoft-text", "yahoo")
MODE_KEYS = {"mail", "rcpt", "data", "delay_ms"}
DELAY_KEYS = {"greeting", "mail", "rcpt", "data"}
# Every provider can be switched to a tarpit: 20 s before each reply, under ipwarm's default
# command timeout (5 min) but long enough to see the pacing stall.
TARPIT = {"delay_ms": {"greeting": 20000, "mail": 20000, "rcpt": 20000, "data": 20000}}


class ConfigError(Exception):
    pass


def need(mapping, key, where, kind=str):
    if key not in mapping:
        raise ConfigError("%s: %s is missing" % (where, key))
    value = mapping[key]
    if not isinstance(value, kind):
        raise ConfigError("%s.%s: expected %s, found %r" % (where, key, kind.__name__, value))
    return value


def host_port(text, where):
    host, sep, port = str(text).rpartition(":")
    if not sep or not port.isdigit() or not host.startswith("127."):
        raise ConfigError("%s: expected 127.x.y.z:PORT on loopback, found %r" % (where, text))
    return host, int(port)


def reply(text, ip):
    """A reply as smtpd.py wants it: lines joined by \\n, no trailing newline, {ip} filled."""
    lines = [line.rstrip() for line in str(text).strip().splitlines() if line.strip()]
    return "\n".join(lines).replace("{ip}", ip)


def txt(name, strings):
    """A dnsmasq txt-record; each string quoted so that commas and semicolons stay in it."""
    return "txt-record=%s,%s" % (name, ",".join('"%s"' % s.replace('"', '\\"') for s in strings))


def delays(value, where):
    if not isinstance(value, dict) or set(value) - DELAY_KEYS:
        raise ConfigError("%s: expected a mapping of %s to milliseconds, found %r"
                          % (where, ", ".join(sorted(DELAY_KEYS)), value))
    return {k: int(v) for k, v in value.items()}


def after_250(p, name):
    """A provider's late_bounce, complain and seeds, checked and made smtpd.py's keys."""
    spec = {}
    for key, known in AFTER_KEYS.items():
        if key not in p:
            continue
        where = "providers.%s.%s" % (name, key)
        v = p[key]
        if not isinstance(v, dict):
            raise ConfigError("%s: expected a mapping of %s" % (where, ", ".join(sorted(known))))
        unknown = set(v) - known
        if unknown:
            raise ConfigError("%s: unknown key %s (known: %s)"
                              % (where, sorted(unknown)[0], ", ".join(sorted(known))))
        need(v, "regex", where)
        for rx in ("regex", "junk_regex"):
            if rx in v:
                try:
                    re.compile(v[rx])
                except re.error as exc:
                    raise ConfigError("%s.%s: %r is not a regex: %s" % (where, rx, v[rx], exc))
        for n in ("every", "delay_ms", "junk_every"):
            if n in v and (not isinstance(v[n], int) or isinstance(v[n], bool) or v[n] < 0):
                raise ConfigError("%s.%s: expected a whole number >= 0, found %r"
                                  % (where, n, v[n]))
        if key == "late_bounce" and v.get("format", "dsn") not in BOUNCE_FORMATS:
            raise ConfigError("%s.format: expected one of %s, found %r"
                              % (where, ", ".join(BOUNCE_FORMATS), v["format"]))
        if key == "late_bounce" and "status" in v and \
                not re.fullmatch(r"[45]\.\d{1,3}\.\d{1,3}", str(v["status"])):
            raise ConfigError("%s.status: expected an RFC 3463 status such as 5.1.1, found %r"
                              % (where, v["status"]))
        spec[key] = dict(v)
    return spec


def loopback_ip(text):
    parts = str(text).split(".")
    return len(parts) == 4 and parts[0] == "127" and all(
        x.isdigit() and 0 <= int(x) <= 255 for x in parts)


def per_ip(p, name, spec, pool, ip):
    """smtpd.py's per_source for a provider: what it does for each sender IP on its own.

    Providers count each sending IP on its own, so with a pool every IP (sender.ip too) gets
    the provider's rate_per_min apart from the others, its throttle reply naming that IP. The
    IPs in defer_ips get defer_reply to every MAIL instead ({ip}: that IP), as a provider that
    distrusts one IP of a pool does, while the others are accepted."""
    where = "providers.%s" % name
    defer = p.get("defer_ips") or []
    if not isinstance(defer, list) or not all(loopback_ip(a) for a in defer):
        raise ConfigError("%s.defer_ips: expected a list of loopback addresses 127.x.y.z, "
                          "found %r" % (where, defer))
    if "defer_reply" in p and not defer:
        raise ConfigError("%s.defer_reply: set defer_ips too (the IPs it answers)" % where)
    text = p.get("defer_reply", "451 4.7.500 Server busy. Please try again later from [{ip}]. "
                                "(S77714)")
    if defer and not re.match(r"[45]\d\d[ -]", reply(text, "")):
        raise ConfigError("%s.defer_reply: expected a 4xx or 5xx reply, found %r" % (where, text))
    out = {}
    if pool and "rate_per_min" in spec:
        for a in [ip] + pool:
            out[a] = {"rate_per_min": spec["rate_per_min"],
                      "throttle": reply(p.get("throttle", "421 4.7.0 Try again later"), a)}
    for a in defer:
        out.setdefault(a, {})["replies"] = {"mail": reply(text, a)}
    return out


def ssha256(password):
    """Dovecot's {SSHA256} scheme: base64 of SHA-256(password + salt) + salt."""
    salt = os.urandom(8)
    return "{SSHA256}" + base64.b64encode(
        hashlib.sha256(password.encode() + salt).digest() + salt).decode()


def dovecot_conf(out, imap, lmtp, junk_folders, cert, key, path):
    """The sandbox's own Dovecot config: everything under DIR/dovecot, loopback only."""
    d = os.path.join(out, "dovecot")
    if os.geteuid() == 0:
        # Dovecot runs no mail process as root: the mail belongs to nobody.
        user = "nobody"
        group = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    else:
        user = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
    mailboxes = "".join('  mailbox "%s" {\n    special_use = \\Junk\n  }\n' % f
                        for f in sorted(junk_folders))
    return user, group, """# Written by scripts/sandbox from %(path)s; edit that file, not this one.
# The sandbox's mailbox server: started as `dovecot -F -c` this file, never the system service.
protocols = imap lmtp
listen = %(imap_host)s
base_dir = %(d)s/run
state_dir = %(d)s/state
log_path = %(out)s/dovecot.log
info_log_path = %(out)s/dovecot.log
default_internal_user = %(user)s
default_internal_group = %(group)s
default_login_user = %(user)s
# Plain-text logins are allowed on loopback (a plan's tls: none); STARTTLS is offered too.
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
ssl = yes
ssl_cert = <%(cert)s
ssl_key = <%(key)s
ssl_min_protocol = TLSv1.2
passdb {
  driver = passwd-file
  args = scheme=SSHA256 username_format=%%Lu %(d)s/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%%Lu %(d)s/passwd
  default_fields = uid=%(user)s gid=%(group)s home=%(d)s/mail/%%Ld/%%Ln
}
mail_location = maildir:~/Maildir
# bounces+TOKEN@sandbox.test is bounces@sandbox.test (VERP); USER+FOLDER@domain files the
# message into FOLDER when it exists, into INBOX otherwise.
recipient_delimiter = +
lmtp_save_to_detail_mailbox = yes
namespace inbox {
  inbox = yes
  separator = /
%(mailboxes)s}
# No chroot: a user who is not root cannot, and the sandbox runs as any user.
service anvil {
  chroot =
}
service ipc {
  chroot =
}
service old-stats {
  chroot =
}
service imap-login {
  chroot =
  inet_listener imap {
    address = %(imap_host)s
    port = %(imap_port)d
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = %(lmtp_host)s
    port = %(lmtp_port)d
  }
}
""" % {"path": path, "d": d, "out": out, "user": user, "group": group, "cert": cert,
       "key": key, "mailboxes": mailboxes, "imap_host": imap[0], "imap_port": imap[1],
       "lmtp_host": lmtp[0], "lmtp_port": lmtp[1]}


def render(cfg, out, dkim_pub, cert, key):
    if not isinstance(cfg, dict):
        raise ConfigError("the file is not a mapping")
    net = need(cfg, "network", "top level", dict)
    dns_host, dns_port = host_port(need(net, "dns", "network"), "network.dns")
    smtp_port = need(net, "smtp_port", "network", int)
    imap = host_port(need(net, "imap", "network"), "network.imap")
    lmtp = host_port(need(net, "lmtp", "network"), "network.lmtp")
    snd = need(cfg, "sender", "top level", dict)
    ip = need(snd, "ip", "sender")
    helo = need(snd, "helo", "sender")
    domain = need(snd, "domain", "sender")
    selector = need(snd, "dkim_selector", "sender")
    zone = snd.get("dnsbl", "bl.sandbox.test")
    if not ip.startswith("127."):
        raise ConfigError("sender.ip: the sandbox stays on loopback (127.x.y.z), found %r" % ip)
    pool = snd.get("pool") or []
    if not isinstance(pool, list) or not all(loopback_ip(a) for a in pool):
        raise ConfigError("sender.pool: expected a list of loopback addresses 127.x.y.z, found %r"
                          % (pool,))
    if ip in pool or len(set(pool)) != len(pool):
        raise ConfigError("sender.pool: each address once, and not sender.ip, found %r" % (pool,))
    common_rcpts = cfg.get("recipients") or {}
    provs = need(cfg, "providers", "top level", dict)

    octets = ip.split(".")
    dns = [
        "# Written by scripts/sandbox from %s; edit that file, not this one." % cfg["_path"],
        "port=%d" % dns_port,
        "listen-address=%s" % dns_host,
        "bind-interfaces",
        "no-resolv",
        "no-hosts",
        # Names under .test that are not configured answer NXDOMAIN, not "no server".
        "local=/test/",
        "local=/%s/" % zone,
        "local-ttl=60",
        "ptr-record=%s.in-addr.arpa,%s" % (".".join(reversed(octets)), helo),
        "host-record=%s,%s" % (helo, ip),
    ]
    # Each IP of the pool: the same name, forward-confirmed (its PTR and an A record).
    dns += ["host-record=%s,%s" % (helo, a) for a in pool]
    if snd.get("spf"):
        dns.append(txt(domain, [snd["spf"]]))
    if snd.get("dmarc"):
        dns.append(txt("_dmarc." + domain, [snd["dmarc"]]))
    # TXT strings hold at most 255 octets: the key goes in several strings (RFC 6376 3.6.2.2).
    chunks = ["v=DKIM1; k=rsa; p="] + [dkim_pub[i:i + 200] for i in range(0, len(dkim_pub), 200)]
    dns.append(txt("%s._domainkey.%s" % (selector, domain), chunks))
    dns.append("address=/2.0.0.127.%s/127.0.0.2" % zone)
    dns.append(txt("2.0.0.127." + zone, ["127.0.0.2 is listed: the RFC 5782 test entry"]))

    listeners = []
    table = []
    seen_addr = {}
    for name, p in provs.items():
        where = "providers.%s" % name
        if not isinstance(p, dict):
            raise ConfigError("%s: expected a mapping" % where)
        unknown = set(p) - PROVIDER_KEYS
        if unknown:
            raise ConfigError("%s: unknown key %s (known: %s)"
                              % (where, sorted(unknown)[0], ", ".join(sorted(PROVIDER_KEYS))))
        addr = need(p, "address", where)
        if not addr.startswith("127."):
            raise ConfigError("%s.address: expected a loopback address 127.x.y.z, found %r"
                              % (where, addr))
        if addr in seen_addr:
            raise ConfigError("%s.address: %s is already %s's" % (where, addr, seen_addr[addr]))
        seen_addr[addr] = name
        mx = need(p, "mx", where)
        domains = p.get("domains") or []
        dns.append("host-record=%s,%s" % (mx, addr))
        for d in domains:
            dns.append("mx-host=%s,%s,10" % (d, mx))
        spec = {"name": name, "host": addr, "port": smtp_port, "hostname": mx,
                "size": int(p.get("size", 35882577)),
                "mode_file": os.path.join(out, name + ".mode")}
        if p.get("starttls", True):
            spec["starttls"] = {"cert": cert, "key": key, "min": "1.2", "max": "1.3"}
        if p.get("require_tls"):
            spec["require_tls"] = True
        if "greeting" in p:
            spec["greeting"] = reply(p["greeting"], ip)
        if "rate_per_min" in p:
            spec["rate_per_min"] = int(p["rate_per_min"])
            spec["throttle"] = reply(p.get("throttle", "421 4.7.0 Try again later"), ip)
        rc = {}
        for src, label in ((p.get("recipients") or {}, where), (common_rcpts, "recipients")):
            if not isinstance(src, dict):
                raise ConfigError("%s: expected a mapping of regex to reply" % label)
            for rx, text in src.items():
                rc.setdefault(rx, reply(text, ip))
        if rc:
            spec["recipients"] = rc
        if "delay_ms" in p:
            spec["delay_ms"] = delays(p["delay_ms"], where + ".delay_ms")
        modes = {"tarpit": TARPIT}
        for mname, m in (p.get("modes") or {}).items():
            mwhere = "%s.modes.%s" % (where, mname)
            if not isinstance(m, dict) or set(m) - MODE_KEYS:
                raise ConfigError("%s: expected a mapping of %s" % (mwhere, ", ".join(sorted(MODE_KEYS))))
            modes[mname] = {k: (delays(v, mwhere + ".delay_ms") if k == "delay_ms" else reply(v, ip))
                            for k, v in m.items()}
        spec["modes"] = modes
        spec.update(after_250(p, name))
        per_source = per_ip(p, name, spec, pool, ip)
        if per_source:
            spec["per_source"] = per_source
        listeners.append(spec)
        table.append("\t".join([name, "%s:%d" % (addr, smtp_port), mx, ",".join(domains) or "-",
                                ",".join(["normal"] + sorted(modes))]))
    if not listeners:
        raise ConfigError("providers: at least one provider is needed")

    # The mailboxes: each one's junk folder is the one its provider files seed copies in (the
    # provider whose domains hold the address), else Junk.
    mb = need(cfg, "mailboxes", "top level", list)
    junk_of = {}
    for name, p in provs.items():
        for d in p.get("domains") or []:
            if "seeds" in p:
                junk_of.setdefault(d.lower(), p["seeds"].get("junk_folder", "Junk"))
    users = []
    for i, addr in enumerate(mb):
        if not isinstance(addr, str) or not re.fullmatch(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+", addr):
            raise ConfigError("mailboxes[%d]: expected an address such as seed@gmail.test "
                              "(no + in it: + reaches a folder), found %r" % (i, addr))
        if addr.lower() in (u for u, _ in users):
            raise ConfigError("mailboxes[%d]: %s is listed twice" % (i, addr))
        users.append((addr.lower(), junk_of.get(addr.rpartition("@")[2].lower(), "Junk")))
    if not users:
        raise ConfigError("mailboxes: at least one mailbox is needed (the return path)")
    try:
        with open(os.path.join(out, "imap.password")) as f:
            password = f.readline().strip()
    except OSError as exc:
        raise ConfigError("cannot read the mailbox password: %s" % exc)
    if not password:
        raise ConfigError("%s is empty" % os.path.join(out, "imap.password"))
    user, group, conf = dovecot_conf(out, imap, lmtp, {j for _, j in users}, cert, key,
                                     cfg["_path"])

    def write(name, text):
        tmp = os.path.join(out, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(out, name))

    write("dnsmasq.conf", "\n".join(dns) + "\n")
    write("smtpd.json", json.dumps({
        "log": os.path.join(out, "smtpd.jsonl"),
        "maildir": os.path.join(out, "mail"),
        "ready_file": os.path.join(out, "smtpd.ready"),
        "deliver": {"lmtp": "%s:%d" % lmtp},
        "listeners": listeners}, indent=1) + "\n")
    os.makedirs(os.path.join(out, "dovecot"), exist_ok=True)
    write("dovecot/dovecot.conf", conf)
    # The passwd-file holds no password, only salted hashes; Dovecot's auth process (user
    # `user`) reads it.
    passwd = os.path.join(out, "dovecot", "passwd")
    fd = os.open(passwd + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("".join("%s:%s::::::\n" % (u, ssha256(password)) for u, _ in users))
    if os.geteuid() == 0:
        os.chown(passwd + ".tmp", pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid)
    os.replace(passwd + ".tmp", passwd)
    write("mailboxes.tsv", "".join("%s\t%s\n" % u for u in users))
    write("sandbox.env", "".join("%s=%s\n" % kv for kv in (
        ("SB_DNS", "%s:%d" % (dns_host, dns_port)), ("SB_DNS_HOST", dns_host),
        ("SB_DNS_PORT", dns_port), ("SB_SMTP_PORT", smtp_port), ("SB_IP", ip),
        ("SB_POOL", ",".join(pool)),
        ("SB_HELO", helo), ("SB_DOMAIN", domain), ("SB_SELECTOR", selector),
        ("SB_DNSBL", zone), ("SB_IMAP", "%s:%d" % imap), ("SB_IMAP_HOST", imap[0]),
        ("SB_IMAP_PORT", imap[1]), ("SB_LMTP", "%s:%d" % lmtp), ("SB_LMTP_HOST", lmtp[0]),
        ("SB_LMTP_PORT", lmtp[1]), ("SB_MAIL_USER", user), ("SB_MAIL_GROUP", group))))
    write("listeners.tsv", "\n".join(table) + "\n")


def main(argv):
    if len(argv) != 6:
        sys.exit("usage: sandbox_render.py CONFIG DIR DKIM_PUBLIC_KEY_BASE64 CERT KEY")
    path, out, pub, cert, key = argv[1:]
    try:
        with open(path) as f:
            cfg = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        sys.exit("sandbox: cannot read %s: %s" % (path, exc))
    try:
        if isinstance(cfg, dict):
            cfg["_path"] = path
        render(cfg, out, pub, cert, key)
    except ConfigError as exc:
        sys.exit("sandbox: %s: %s" % (path, exc))
    except (TypeError, ValueError) as exc:
        sys.exit("sandbox: %s: %s" % (path, exc))


if __name__ == "__main__":
    main(sys.argv)

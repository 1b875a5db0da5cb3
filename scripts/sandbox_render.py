#!/usr/bin/python3
"""Turns the sandbox's one readable config file into what its servers read.

scripts/sandbox calls this; people edit config/sandbox/sandbox.yaml (its comments describe every
key). From that file it writes, into the sandbox directory:
  dnsmasq.conf   the DNS records (RFC 1035 zone data as dnsmasq options): the sender's PTR and
                 A records (forward-confirmed reverse DNS), SPF (RFC 7208), DKIM (RFC 6376) and
                 DMARC (RFC 7489) TXT records, a DNS block list zone that lists only the RFC 5782
                 test address 127.0.0.2, and each provider's MX (RFC 5321 section 5) and A record;
  smtpd.json     the listeners of tests/servers/smtpd.py, one per provider;
  sandbox.env    shell assignments scripts/sandbox reads back (addresses, ports);
  listeners.tsv  one line per provider for `scripts/sandbox status`: name, address, MX, domains,
                 modes.

Usage: sandbox_render.py CONFIG DIR DKIM_PUBLIC_KEY_BASE64 CERT KEY
Exits 0 when everything is written, 1 with one sentence naming the key when the config is wrong.
"""
import json
import os
import sys

try:
    import yaml
except ImportError:
    sys.exit("sandbox: Debian's python3-yaml is needed (scripts/deps demo installs it)")

PROVIDER_KEYS = {"address", "mx", "domains", "rate_per_min", "throttle", "recipients",
                 "delay_ms", "modes", "greeting", "size", "starttls", "require_tls"}
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


def render(cfg, out, dkim_pub, cert, key):
    if not isinstance(cfg, dict):
        raise ConfigError("the file is not a mapping")
    net = need(cfg, "network", "top level", dict)
    dns_host, dns_port = host_port(need(net, "dns", "network"), "network.dns")
    smtp_port = need(net, "smtp_port", "network", int)
    snd = need(cfg, "sender", "top level", dict)
    ip = need(snd, "ip", "sender")
    helo = need(snd, "helo", "sender")
    domain = need(snd, "domain", "sender")
    selector = need(snd, "dkim_selector", "sender")
    zone = snd.get("dnsbl", "bl.sandbox.test")
    if not ip.startswith("127."):
        raise ConfigError("sender.ip: the sandbox stays on loopback (127.x.y.z), found %r" % ip)
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
        listeners.append(spec)
        table.append("\t".join([name, "%s:%d" % (addr, smtp_port), mx, ",".join(domains) or "-",
                                ",".join(["normal"] + sorted(modes))]))
    if not listeners:
        raise ConfigError("providers: at least one provider is needed")

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
        "listeners": listeners}, indent=1) + "\n")
    write("sandbox.env", "".join("%s=%s\n" % kv for kv in (
        ("SB_DNS", "%s:%d" % (dns_host, dns_port)), ("SB_DNS_HOST", dns_host),
        ("SB_DNS_PORT", dns_port), ("SB_SMTP_PORT", smtp_port), ("SB_IP", ip),
        ("SB_HELO", helo), ("SB_DOMAIN", domain), ("SB_SELECTOR", selector),
        ("SB_DNSBL", zone))))
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

#!/usr/bin/env bash
# Every message that `ipwarm run` delivers to a loopback server is DKIM-signed and verifies with
# an independent implementation (Debian's python3-dkim, through tests/dkim/verify.py), for an
# RSA and an Ed25519 key made by `ipwarm dkim keygen`; tampered copies do not verify; the
# Japanese subject and display name decode back to the template's text; List-Unsubscribe (with
# the recipient's token) and List-Unsubscribe-Post are present and signed; a body line that
# starts with a dot arrives unchanged.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq sqlite3 py:dkim
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-rdkim-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
py=/usr/bin/python3
net=$(plans_net)
dnsmasq_start < <(plans_mx "$net" gmail)
port=$(free_port)
smtpd_start dkim "[{\"name\": \"gmail\", \"host\": \"$net.2\", \"port\": $port}]"
maildir=$SERVERS_DIR/dkim.mail

cd "$work" || exit 1
export IPWARM_UNSUBSCRIBE_SECRET='run-dkim-test-secret-0123456789'
printf 'email,first_name\nr1@gmail.test,花子\nr2@gmail.test,Ann\n' >seeds.csv
printf 'こんにちは {{first_name}}さん、\n\nwarm-up {{seq}}.\n.a line that starts with a dot\n' >message.txt
printf '<p>こんにちは <b>{{first_name}}</b></p>\n' >message.html
for type in rsa ed25519; do
  "$IPWARM" dkim keygen --selector "s$type" --domain example.com --type "$type" -o "$type.pem" \
    --json >"$type.json"
  check "dkim keygen --type $type exits 0" test $? -eq 0
  { plans_head --zone Asia/Tokyo "dkim-$type" "$net" "$port"; cat <<EOF; } >"$type.yaml"
sender:
  from: "山田 太郎 <news@example.com>"
  return_path: bounces@example.com
  dkim: {domain: example.com, selector: s$type, key_file: $type.pem}
message:
  subject: "こんにちは、{{first_name}}さん"
  text_file: message.txt
  html_file: message.html
  list_unsubscribe: "https://example.com/u/{{token}}"
recipients: {file: seeds.csv, mode: once}
ramp: {start: 120/min, growth: 1.5, max: 600/min}
EOF
  "$IPWARM" -p "$type.yaml" --db "$type.db" run >"$type.out" 2>"$type.err"
  rc=$?
  check "run with a $type key exits 0 (got $rc: $(tail -1 "$type.err"))" test "$rc" -eq 0
  check "both messages delivered ($type)" test "$(sqlite3 "$type.db" "SELECT count(*) FROM attempts WHERE outcome = 'delivered'")" -eq 2
done

# What each message must decode to, from the templates and the recipient list, and the DNS
# records keygen printed.
$py - "$work" >expect.json <<'EOF'
import base64, hashlib, hmac, json, os, sqlite3, sys
work = sys.argv[1]
names = {"r1@gmail.test": "花子", "r2@gmail.test": "Ann"}
secret = os.environ["IPWARM_UNSUBSCRIBE_SECRET"].encode()
records, messages = {}, {}
for t, alg in (("rsa", "rsa-sha256"), ("ed25519", "ed25519-sha256")):
    k = json.load(open(os.path.join(work, t + ".json")))
    records["s%s._domainkey.example.com." % t] = k["record"]
    con = sqlite3.connect(os.path.join(work, t + ".db"))
    for mid, rcpt, seq in con.execute("SELECT message_id, recipient, id FROM attempts WHERE outcome = 'delivered'"):
        mac = hmac.new(secret, ("dkim-%s" % t).encode() + b"\0" + rcpt.encode(), hashlib.sha256).digest()
        token = base64.urlsafe_b64encode(mac[:16]).decode().rstrip("=")
        messages[mid] = {
            "subject": "こんにちは、%sさん" % names[rcpt],
            "from_name": "山田 太郎",
            "text": None,  # the seq number inside is the engine's; checked below instead
            "html": "<p>こんにちは <b>%s</b></p>\n" % names[rcpt],
            "algorithm": alg,
            "list_unsubscribe": "<https://example.com/u/%s>" % token,
        }
json.dump({"records": records, "messages": messages}, sys.stdout, ensure_ascii=False)
EOF
check "expectations written" test -s expect.json
# verify.py compares text parts exactly; the text here carries the engine's {{seq}}, so fill
# it from the saved message's own sequence number.
$py - expect.json "$maildir" <<'EOF'
import email, email.policy, glob, json, re, sys
exp = json.load(open(sys.argv[1]))
for path in glob.glob(sys.argv[2] + "/*.eml"):
    msg = email.message_from_bytes(open(path, "rb").read(), policy=email.policy.default)
    mid = msg["Message-ID"]
    seq = re.match(r"<[^.]+\.(\d+)\.", mid).group(1)
    name = exp["messages"][mid]["subject"][len("こんにちは、"):-len("さん")]
    exp["messages"][mid]["text"] = "こんにちは %sさん、\n\nwarm-up %s.\n.a line that starts with a dot\n" % (name, seq)
json.dump(exp, open(sys.argv[1], "w"), ensure_ascii=False)
EOF
$py "$SRCDIR/tests/dkim/verify.py" expect.json "$maildir" >verify.out 2>&1
rc=$?
sed 's/^/    /' verify.out | tail -40
check "python3-dkim verifies every delivered message; tampered copies fail (verify.py exit $rc)" test "$rc" -eq 0
check "python3-dkim verified each of the four messages" test "$(grep -c 'python3-dkim verifies it$' verify.out)" -eq 4

finish

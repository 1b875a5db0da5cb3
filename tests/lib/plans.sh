# shellcheck shell=bash
# Pieces of warm-up plans and their surroundings that the CLI tests share, so that each test
# writes only what it is about. Source it after tests/lib/servers.sh (plans_head uses DNS_SERVER,
# set by dnsmasq_start; plans_stats needs neither):
#
#     . "$SRCDIR/tests/lib/plans.sh"
#     net=$(plans_net)
#     dnsmasq_start < <(plans_mx "$net" gmail yahoo)   # not a pipe: dnsmasq_start sets variables
#     plans_message "$work"
#     { plans_head fb-test "$net" "$port"; cat <<EOF; } >"$work/plan.yaml"
#     sender: ...
#     EOF
#
# Functions:
#   plans_net               Prints a random 127.0.X network (X in 26..225, clear of the sandbox's
#                           127.0.25), so that tests running at once use addresses of their own;
#                           the sending IP is NET.1.
#   plans_mx NET NAME[:N]...
#                           Prints dnsmasq lines giving each NAME.test an MX host on NET.N. The
#                           providers' test domains have an MX host whose name the shipped
#                           provider table recognises, and an address of their own by default:
#                             gmail   gmail.test   -> gmail-smtp-in.l.google.com      NET.2
#                             yahoo   yahoo.test   -> mta5.am0.yahoodns.net           NET.3
#                             outlook outlook.test -> outlook-test.mail.protection.outlook.com NET.4
#                           Any other NAME needs its N and gets the MX host mx.NAME.test.
#   plans_listener NAME NET PORT [JSON]
#                           Prints the tests/servers/smtpd.py listener (a JSON object) that
#                           plays provider NAME (gmail, yahoo, outlook) on the address plans_mx
#                           gives it by default, with that MX host's name as its hostname and
#                           JSON (more members, such as '"seeds": {...}') added. The listeners
#                           are named gmail, yahoo and microsoft.
#   plans_head [OPTION...] CAMPAIGN NET PORT
#                           Prints the plan keys such tests have alike: campaign, timezone,
#                           source NET.1 with helo mx1.example.com, direct transport to PORT,
#                           no pre-flight requirement, and the test's dnsmasq as resolver. The
#                           test adds sender, message, recipients, ramp and its own sections.
#                           Options (the defaults in brackets):
#                             --zone ZONE          timezone [UTC]
#                             --state FILE         state [none: the default state file]
#                             --ips 'A, B'         source.ips, a pool, instead of NET.1 (in
#                                                  block style, one key a line: a test may
#                                                  add the pool's keys with sed)
#                             --timeouts C/D       transport timeouts connect C, command D [3s/5s]
#                             --tls MODE           transport.tls [none: the default]
#                             --per-provider N     transport.connections_per_provider [default]
#                             --dns SERVER         the resolver [DNS_SERVER]
#                             --dns-timeout T      dns.timeout [2s]
#   plans_providers NAME... Prints a providers section naming each provider (gmail, yahoo,
#                           microsoft) by the MX suffix of its plans_mx host, and "other" as the
#                           default for the rest.
#   plans_seed ADDRESS [ENV]
#                           Prints one seeds entry: ADDRESS read over IMAP (no TLS) from the
#                           test's Dovecot (DOVECOT_IMAP_PORT), logging in as ADDRESS's local
#                           part with the password in environment variable ENV [SEED_PW].
#   plans_stats CAMPAIGN    For the tests of the views (stats, metrics, report) on a filled state:
#                           writes plan.yaml in the current directory (CAMPAIGN, Asia/Tokyo,
#                           source 192.0.2.10, state state.db) with tests/plans' message and
#                           seeds beside it, and fills state.db with the scenario of
#                           tests/unit/test_stats.c (BUILDDIR/test_stats --fill, its output
#                           discarded). False when the fill fails.
#   plans_message DIR       Writes DIR/message.txt, the body "Hello {{recipient}}" (message.text_file).

plans_net() {
  echo "127.0.$((26 + RANDOM % 200))"
}

plans_mx() {
  local net=$1 arg name n host
  shift
  for arg in "$@"; do
    name=${arg%%:*}
    n=
    [ "$arg" = "$name" ] || n=${arg#*:}
    case $name in
      gmail) host=gmail-smtp-in.l.google.com n=${n:-2} ;;
      yahoo) host=mta5.am0.yahoodns.net n=${n:-3} ;;
      outlook) host=outlook-test.mail.protection.outlook.com n=${n:-4} ;;
      *) host=mx.$name.test ;;
    esac
    if [ -z "$n" ]; then
      echo "plans.sh: plans_mx: '$name' is no provider of the table (gmail, yahoo, outlook): give its address, $name:N" >&2
      return 1
    fi
    printf 'mx-host=%s.test,%s,10\nhost-record=%s,%s.%s\n' "$name" "$host" "$host" "$net" "$n"
  done
}

plans_listener() {
  local name=$1 net=$2 port=$3 extra=${4:+, $4} host n
  case $name in
    gmail) host=gmail-smtp-in.l.google.com n=2 ;;
    yahoo) host=mta5.am0.yahoodns.net n=3 ;;
    outlook) name=microsoft host=outlook-test.mail.protection.outlook.com n=4 ;;
    *)
      echo "plans.sh: plans_listener: no provider '$name' (gmail, yahoo, outlook)" >&2
      return 1
      ;;
  esac
  printf '{"name": "%s", "host": "%s.%s", "port": %s, "hostname": "%s"%s}' \
    "$name" "$net" "$n" "$port" "$host" "$extra"
}

plans_head() {
  local zone=UTC state='' ips='' timeouts=3s/5s tls='' per='' dns=${DNS_SERVER:-} dns_timeout=2s
  while [ $# -gt 3 ]; do
    case $1 in
      --zone) zone=$2 ;;
      --state) state=$2 ;;
      --ips) ips=$2 ;;
      --timeouts) timeouts=$2 ;;
      --tls) tls=$2 ;;
      --per-provider) per=$2 ;;
      --dns) dns=$2 ;;
      --dns-timeout) dns_timeout=$2 ;;
      *)
        echo "plans.sh: plans_head: unknown option '$1'" >&2
        return 1
        ;;
    esac
    shift 2
  done
  echo "campaign: $1"
  echo "timezone: $zone"
  [ -z "$state" ] || echo "state: $state"
  if [ -n "$ips" ]; then
    printf 'source:\n  ips: [%s]\n  helo: mx1.example.com\n' "$ips"
  else
    echo "source: {ip: $2.1, helo: mx1.example.com}"
  fi
  echo "transport: {mode: direct, port: $3${tls:+, tls: $tls}, timeouts: {connect: ${timeouts%/*}, command: ${timeouts#*/}}${per:+, connections_per_provider: $per}}"
  echo "preflight: {require: []}"
  echo "dns: {servers: [\"${dns:?plans_head: start dnsmasq first}\"], timeout: $dns_timeout}"
}

plans_providers() {
  local name
  echo "providers:"
  for name in "$@"; do
    case $name in
      gmail) echo "  - {name: gmail, mx: [.google.com]}" ;;
      yahoo) echo "  - {name: yahoo, mx: [.yahoodns.net]}" ;;
      microsoft) echo "  - {name: microsoft, mx: [.protection.outlook.com]}" ;;
      *)
        echo "plans.sh: plans_providers: no provider '$name' (gmail, yahoo, microsoft)" >&2
        return 1
        ;;
    esac
  done
  echo "  - {name: other, default: true}"
}

plans_seed() {
  printf '  - {address: %s, url: "imap://127.0.0.1:%s", username: %s, password_env: %s, tls: none}\n' \
    "$1" "${DOVECOT_IMAP_PORT:?plans_seed: start dovecot first}" "${1%@*}" "${2:-SEED_PW}"
}

plans_message() {
  printf 'Hello {{recipient}}\n' >"$1/message.txt"
}

plans_stats() {
  cp "$SRCDIR/tests/plans/message.txt" "$SRCDIR/tests/plans/seeds.csv" . || return 1
  cat >plan.yaml <<EOF
campaign: $1
timezone: Asia/Tokyo
source: {ip: 192.0.2.10, helo: mx.example.com}
sender: {from: "News <news@example.com>"}
message: {subject: Hi, text_file: message.txt}
recipients: {file: seeds.csv}
state: state.db
EOF
  "${BUILDDIR:?plans_stats: set BUILDDIR}/test_stats" --fill state.db >/dev/null 2>&1
}

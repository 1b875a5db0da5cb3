# shellcheck shell=bash
# Pieces of warm-up plans and their surroundings that the feedback tests share, so that each test
# writes only what it is about. Source it after tests/lib/servers.sh (plans_head uses DNS_SERVER,
# set by dnsmasq_start):
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
#   plans_net               Prints a random 127.0.X network (X in 20..219), so that tests running
#                           at once use addresses of their own; the sending IP is NET.1.
#   plans_mx NET NAME...    Prints dnsmasq lines giving each provider's test domain an MX host
#                           whose name the shipped provider table recognises, on a fixed address:
#                             gmail   gmail.test   -> gmail-smtp-in.l.google.com      NET.2
#                             yahoo   yahoo.test   -> mta5.am0.yahoodns.net           NET.3
#                             outlook outlook.test -> outlook-test.mail.protection.outlook.com NET.4
#   plans_head CAMPAIGN NET PORT
#                           Prints the plan keys every such test has alike: campaign, timezone
#                           UTC, source NET.1 with helo mx1.example.com, direct transport to PORT
#                           (connect 3s, command 5s), no pre-flight requirement, and the test's
#                           dnsmasq as resolver. The test adds sender, message, recipients, ramp
#                           and its own sections.
#   plans_message DIR       Writes DIR/message.txt, the body "Hello {{recipient}}" (message.text_file).

plans_net() {
  echo "127.0.$((26 + RANDOM % 200))"
}

plans_mx() {
  local net=$1 name
  shift
  for name in "$@"; do
    case $name in
      gmail) printf 'mx-host=gmail.test,gmail-smtp-in.l.google.com,10\nhost-record=gmail-smtp-in.l.google.com,%s.2\n' "$net" ;;
      yahoo) printf 'mx-host=yahoo.test,mta5.am0.yahoodns.net,10\nhost-record=mta5.am0.yahoodns.net,%s.3\n' "$net" ;;
      outlook) printf 'mx-host=outlook.test,outlook-test.mail.protection.outlook.com,10\nhost-record=outlook-test.mail.protection.outlook.com,%s.4\n' "$net" ;;
      *)
        echo "plans.sh: plans_mx: no provider '$name' (gmail, yahoo, outlook)" >&2
        return 1
        ;;
    esac
  done
}

plans_head() {
  cat <<EOF
campaign: $1
timezone: UTC
source: {ip: $2.1, helo: mx1.example.com}
transport: {mode: direct, port: $3, timeouts: {connect: 3s, command: 5s}}
preflight: {require: []}
dns: {servers: ["${DNS_SERVER:?plans_head: start dnsmasq first}"], timeout: 2s}
EOF
}

plans_message() {
  printf 'Hello {{recipient}}\n' >"$1/message.txt"
}

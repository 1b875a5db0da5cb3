/*
 * dns_internal: what the files of the resolver (dns.c, dns_parse.c, dns_mx.c) share and no
 * user of dns.h needs.
 */
#ifndef IPWARM_DNS_INTERNAL_H
#define IPWARM_DNS_INTERNAL_H

#include "ipwarm/dns.h"

/* Removes one trailing dot of a name, in place. */
void dns_strip_dot(char *s);

/* Points the callbacks cb (of arg, or of any arg when arg is NULL) of every query not yet
 * delivered at a no-op, for a caller that must return before its queries end. */
void dns_detach(struct dns *dns, dns_callback *cb, const void *arg);

#endif

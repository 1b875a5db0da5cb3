/*
 * stats_mask: the masking of a reply text into the key it is counted under (summary_reasons),
 * a module apart from stats because both sides use it: the store masks each reply as it
 * counts it, and stats reads the counters back through the store. So stats depends on the
 * store, and the store only on this, not on stats.
 */
#ifndef IPWARM_STATS_MASK_H
#define IPWARM_STATS_MASK_H

#include <stddef.h>

/* Room for a masked reply text and its NUL; longer replies are cut at a character boundary. */
#define STATS_REASON_MAX 512

/*
 * Writes text with its variable parts replaced into out (always NUL-terminated when n > 0) and
 * returns the length written. Pure: depends on text only. Line breaks and the reply code and
 * enhanced code that start each line of a multi-line reply ("451-4.7.500 ") are removed (they
 * are stored in their own columns) and runs of white space become one space. Then, token by
 * token: IPv4 and IPv6 addresses become "<ip>", mail addresses "<addr>", host names (two or
 * more labels, the last alphabetic) "<host>", tokens of 8 or more characters mixing letters and
 * digits (queue IDs, message IDs, time stamps) "<id>", and every other number "#". Short codes
 * that name a reason, such as Microsoft's "S77714" or Yahoo's "TSS04", are kept. NULL text
 * gives "".
 */
size_t stats_mask_reason(const char *text, char *out, size_t n);

#endif

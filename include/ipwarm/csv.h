/*
 * csv: writing CSV (RFC 4180) that is safe to open in a spreadsheet.
 *
 * Every CSV ipwarm writes (`stats --format csv`) goes through csv_write_field, so that each
 * field is quoted and escaped the same way, and so that a field a spreadsheet would run as a
 * formula is defused. Reply texts come from remote servers and provider names from plans: a
 * reply that starts with "=HYPERLINK(...)" must show as text, not become a link (CSV or
 * formula injection, CWE-1236). Reading CSV (the recipient list) is recipients.c's.
 */
#ifndef IPWARM_CSV_H
#define IPWARM_CSV_H

#include <stdbool.h>
#include <stdio.h>

/* Does a spreadsheet read a field starting like s as a formula? True when its first character
 * is '=', '+', '-', '@', a tab or a carriage return (OWASP's list). */
bool csv_is_formula(const char *s);

/*
 * Writes s as one field (NULL writes an empty field). A field that holds a comma, a double
 * quote, a CR or an LF is quoted with its quotes doubled (RFC 4180 section 2). A field that
 * csv_is_formula() is prefixed with a single quote and quoted ("'=HYPERLINK(...)"), as OWASP
 * advises: the spreadsheet shows the text, the quote tells a reader it was defused.
 */
void csv_write_field(FILE *f, const char *s);

#endif

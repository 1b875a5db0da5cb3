/*
 * csv: RFC 4180 fields with formula injection defused (see csv.h).
 *
 * The advice followed is OWASP's "CSV Injection" page: a cell that begins with =, +, -, @, tab
 * or carriage return is taken by Excel, LibreOffice and Google Sheets as a formula (DDE or
 * HYPERLINK tricks included), so such a field gets a leading single quote, and the field is
 * quoted so that the quote and what follows stay one cell. A plain number never starts a
 * field written here: counts and rates are written by the caller as numbers, not through
 * csv_write_field, so a negative number would not be altered by mistake.
 */
#include "ipwarm/csv.h"

#include <string.h>

bool csv_is_formula(const char *s)
{
    return s && s[0] && strchr("=+-@\t\r", s[0]) != NULL;
}

void csv_write_field(FILE *f, const char *s)
{
    if (!s)
        return;
    bool formula = csv_is_formula(s);
    if (!formula && !strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    if (formula)
        fputc('\'', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/*
 * chars: the ASCII character classes of the mail and DNS grammars, in one place.
 *
 * ctype.h answers for the current locale (isalpha('\xe9') is true in a Latin-1 locale), and
 * RFC 5321/5322 (atext, the digits of a reply code), RFC 1123 (LDH host names), RFC 3986
 * (unreserved) and RFC 7208 (SPF) are defined over ASCII bytes, so these never look at the
 * locale: a byte of 0x80 or above belongs to no class.
 */
#ifndef IPWARM_CHARS_H
#define IPWARM_CHARS_H

#include <stdbool.h>
#include <stddef.h>

static inline bool chars_is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static inline bool chars_is_upper(int c)
{
    return c >= 'A' && c <= 'Z';
}

static inline bool chars_is_lower(int c)
{
    return c >= 'a' && c <= 'z';
}

static inline bool chars_is_alpha(int c)
{
    return chars_is_upper(c) || chars_is_lower(c);
}

static inline bool chars_is_alnum(int c)
{
    return chars_is_alpha(c) || chars_is_digit(c);
}

/* The value of a hex digit (either case), or -1. */
static inline int chars_hex_value(int c)
{
    if (chars_is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static inline bool chars_is_hex(int c)
{
    return chars_hex_value(c) >= 0;
}

/* Space or horizontal tab (RFC 5234 WSP). */
static inline bool chars_is_blank(int c)
{
    return c == ' ' || c == '\t';
}

/* White space as the C locale has it: space, \t, \n, \v, \f, \r. */
static inline bool chars_is_space(int c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* RFC 5322 3.2.3 atext: letters, digits and !#$%&'*+-/=?^_`{|}~ */
static inline bool chars_is_atext(int c)
{
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '/':
    case '=':
    case '?':
    case '^':
    case '_':
    case '`':
    case '{':
    case '|':
    case '}':
    case '~':
        return true;
    default:
        return chars_is_alnum(c);
    }
}

/* A letter, digit or hyphen: the bytes of an RFC 1123 host name label. */
static inline bool chars_is_ldh(int c)
{
    return chars_is_alnum(c) || c == '-';
}

/* RFC 3986 2.3 unreserved: letters, digits and -._~ */
static inline bool chars_is_unreserved(int c)
{
    return chars_is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* The HTML 5 character reference for one of the five characters that text and attribute values
 * escape (& < > " '), or NULL for any other byte. */
static inline const char *chars_html_entity(int c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    default:
        return NULL;
    }
}

/* c in lower case, when it is an ASCII capital; any other byte as it is. */
static inline int chars_lower(int c)
{
    return chars_is_upper(c) ? c - 'A' + 'a' : c;
}

static inline int chars_upper(int c)
{
    return chars_is_lower(c) ? c - 'a' + 'A' : c;
}

#endif

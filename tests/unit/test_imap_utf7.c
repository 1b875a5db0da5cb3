/*
 * test_imap_utf7: IMAP's modified UTF-7 mailbox names (RFC 3501 5.1.3) both ways, with the
 * RFC's own example, a character outside the BMP (a surrogate pair), "&" escaped as "&-",
 * and names a server could send that are not modified UTF-7.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ipwarm/imap.h"

static void roundtrip(const char *utf8, const char *mutf7)
{
    char *e = imap_utf7_encode(utf8);
    assert_non_null(e);
    assert_string_equal(e, mutf7);
    char *d = imap_utf7_decode(mutf7);
    assert_non_null(d);
    assert_string_equal(d, utf8);
    free(d);
    free(e);
}

static void test_vectors(void **state)
{
    (void)state;
    roundtrip("INBOX", "INBOX");
    roundtrip("Tom & Jerry", "Tom &- Jerry");
    /* RFC 3501 5.1.3: "~peter/mail/" + U+53F0 U+5317 + "/" + U+65E5 U+672C U+8A9E */
    roundtrip("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
              "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
    roundtrip("Entw\xc3\xbc rfe", "Entw&APw- rfe");
    /* U+1F600: the surrogate pair D83D DE00 */
    roundtrip("\xf0\x9f\x98\x80", "&2D3eAA-");
}

static void test_rejects(void **state)
{
    (void)state;
    assert_null(imap_utf7_decode("&U,BTFw"));  /* no closing "-" */
    assert_null(imap_utf7_decode("&U/BTFw-")); /* "/" is not modified base64 */
    assert_null(imap_utf7_decode("&AP=-"));    /* nor is padding */
    assert_null(imap_utf7_decode("&2D0-"));    /* a high surrogate alone */
    assert_null(imap_utf7_decode("&3gA-"));    /* a low surrogate alone */
    assert_null(imap_utf7_encode("\xc3"));     /* truncated UTF-8 */
    assert_null(imap_utf7_encode("\xff"));     /* not UTF-8 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

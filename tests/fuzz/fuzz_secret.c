/*
 * fuzz_secret: secret_mask() (secret.h), the masker of credentials echoed in server replies, on
 * arbitrary text and credentials.
 *
 * Input: a byte giving the username's length (mod 16), a byte giving the password's (mod 16),
 * the username, the password, then the reply text (a NUL in any of them ends that string). It
 * checks what secret.h promises: the text never grows and stays NUL-terminated; nothing masked
 * means nothing changed; and, for a password without '*' (the mask is made of them), the
 * password never survives and masking again changes nothing (the mask makes no new token).
 */
#include <stdlib.h>
#include <string.h>

#include "ipwarm/secret.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 65536)
        return 0;
    size_t ul = data[0] % 16, pl = data[1] % 16;
    if (size < 2 + ul + pl)
        return 0;
    char user[17], pw[17];
    memcpy(user, data + 2, ul);
    user[ul] = '\0';
    memcpy(pw, data + 2 + ul, pl);
    pw[pl] = '\0';
    size_t tl = size - 2 - ul - pl;
    char *text = malloc(tl + 1), *orig = malloc(tl + 1);
    if (!text || !orig) {
        free(text);
        free(orig);
        return 0;
    }
    memcpy(text, data + 2 + ul + pl, tl);
    text[tl] = '\0';
    memcpy(orig, text, tl + 1);
    size_t before = strlen(text);

    size_t spans = secret_mask(text, user, pw);
    size_t after = strnlen(text, tl + 1);
    FUZZ_CHECK(after <= before);
    if (spans == 0)
        FUZZ_CHECK(strcmp(text, orig) == 0);
    /* A password with a '*' may meet the mask itself: only the others are checked further. */
    if (!strchr(pw, '*')) {
        if (pl > 0 && strlen(pw) > 0)
            FUZZ_CHECK(strstr(text, pw) == NULL);
        memcpy(orig, text, after + 1);
        secret_mask(text, user, pw);
        FUZZ_CHECK(strcmp(text, orig) == 0);
    }
    free(text);
    free(orig);
    return 0;
}

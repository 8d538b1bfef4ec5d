/* name_uuid.c - see name_uuid.h. */
#include "runtime/name_uuid.h"

#include "runtime/crypto.h"
#include <stdio.h>

void name_uuid(const char *name, size_t len, char out[37])
{
    uint8_t md[CRYPTO_SHA1_LEN] = {0};
    crypto_sha1(name, len, md);
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50); /* version 5 */
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* RFC variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", md[0],
             md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10], md[11], md[12],
             md[13], md[14], md[15]);
}

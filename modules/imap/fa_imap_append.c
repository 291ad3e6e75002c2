/*
 * APPEND: not written yet.
 */

#include "fa_imap_int.h"

fa_int_t
fa_imap_append(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    (void) cmd;
    return fa_imap_tagged(s, "NO", "[CANNOT] Not implemented yet");
}

fa_int_t
fa_imap_append_literal(fa_imap_session_t *s, uint64_t size, int sync, int binary)
{
    (void) s;
    (void) size;
    (void) sync;
    (void) binary;
    return FA_DECLINED;
}

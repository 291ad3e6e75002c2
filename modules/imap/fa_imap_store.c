/*
 * STORE, COPY, MOVE, EXPUNGE: not written yet.
 */

#include "fa_imap_int.h"

fa_int_t
fa_imap_store(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    (void) cmd;
    return fa_imap_tagged(s, "NO", "[CANNOT] Not implemented yet");
}

fa_int_t
fa_imap_copy(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    (void) cmd;
    return fa_imap_tagged(s, "NO", "[CANNOT] Not implemented yet");
}

fa_int_t
fa_imap_move(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    (void) cmd;
    return fa_imap_tagged(s, "NO", "[CANNOT] Not implemented yet");
}

fa_int_t
fa_imap_expunge(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    (void) cmd;
    return fa_imap_tagged(s, "NO", "[CANNOT] Not implemented yet");
}

/*
 * The IMAP command parser: a complete command (its literals inline, as the
 * session collected them) into a tag, a command name and a tree of
 * arguments; sequence sets; and the scanner the session uses to collect a
 * command line by line and literal by literal.
 *
 * Everything is bounded: the command's size is the session's limit, lists
 * nest at most FA_IMAP_DEPTH_MAX deep, a command has at most
 * FA_IMAP_ARGS_MAX arguments in all.  A malformed command is FA_DECLINED
 * with a reason for the BAD reply; the parser never reads past the buffer.
 */

#ifndef FA_IMAP_PARSER_H
#define FA_IMAP_PARSER_H

#include "fa_core.h"

#define FA_IMAP_DEPTH_MAX   32          /* parenthesised lists */
#define FA_IMAP_ARGS_MAX    100000      /* arguments of one command, all levels */
#define FA_IMAP_TAG_MAX     64

typedef enum {
    FA_IMAP_ARG_ATOM = 0,      /* also numbers, sequence sets, NIL, fetch items */
    FA_IMAP_ARG_STRING,        /* quoted, unescaped */
    FA_IMAP_ARG_LITERAL,       /* {n}, {n+}, ~{n} (literal8) */
    FA_IMAP_ARG_LIST           /* ( ... ) */
} fa_imap_arg_type_t;

typedef struct fa_imap_arg_s  fa_imap_arg_t;
struct fa_imap_arg_s {
    fa_imap_arg_type_t  type;
    fa_str_t            str;        /* ATOM, STRING, LITERAL */
    fa_imap_arg_t      *list;       /* LIST: its elements */
    fa_uint_t           n;          /* LIST: how many */
    unsigned            literal8:1;
};

typedef struct {
    fa_str_t            tag;
    fa_str_t            name;       /* upper-cased */
    fa_imap_arg_t      *args;       /* after the name */
    fa_uint_t           nargs;
    unsigned            uid:1;      /* "UID FETCH": name is "FETCH" */
} fa_imap_command_t;

/*
 * Parse a collected command (without its final CRLF).  FA_OK, FA_DECLINED
 * with *why (the tag is set when it could be read, so the BAD carries it),
 * or FA_ERROR (no memory).  Strings point into buf or the pool.
 */
fa_int_t fa_imap_parse(fa_pool_t *pool, u_char *buf, size_t len, fa_imap_command_t *cmd,
    const char **why);

/* parse the arguments that follow in p..end (APPEND's pieces) */
fa_int_t fa_imap_parse_args(fa_pool_t *pool, u_char *p, u_char *end, fa_imap_arg_t **args,
    fa_uint_t *nargs, const char **why);

/*
 * A line of a command as it is collected: does it end with a literal
 * announcement?  FA_OK with *size, *sync (0 for {n+}) and *binary (~{n}),
 * FA_DECLINED if it does not, FA_ERROR if the announcement is malformed
 * (a size over 2^63 included).
 */
fa_int_t fa_imap_literal_at_end(const u_char *line, size_t len, uint64_t *size, int *sync,
    int *binary);

/* astring: ATOM, STRING or LITERAL; NULL otherwise */
const fa_str_t *fa_imap_arg_string(const fa_imap_arg_t *a);
int fa_imap_arg_is(const fa_imap_arg_t *a, const char *atom);   /* case-insensitive */

/*
 * Sequence sets: "1:3,5,*" with * = max (the highest MSN or UID).  Parsed
 * into sorted, merged ranges in the pool; 0 and numbers over 2^32-1 are
 * FA_DECLINED.  "$" (the last search result) is not supported here.
 */
typedef struct {
    uint32_t   first;
    uint32_t   last;
} fa_imap_range_t;

fa_int_t fa_imap_parse_set(fa_pool_t *pool, const fa_str_t *s, uint32_t max,
    fa_imap_range_t **ranges, fa_uint_t *n);

#endif /* FA_IMAP_PARSER_H */

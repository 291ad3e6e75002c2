/*
 * Message file names.
 *
 *   1732252877.M123456P4242Q7.mx1,S=2048,W=2101:2,FRSa
 *   `--- base: unique, never changes ----------' `-- info: flags
 *
 * The base is what the uidlist records; the info after ":2," changes with
 * the flags, by renaming the file in cur/.  S= is the size of the file and
 * W= its size with CRLF line ends (what IMAP's RFC822.SIZE means), so
 * neither needs a stat() or a read.
 */

#include "fa_maildir.h"

static const struct {
    char       letter;
    uint32_t   flag;
} fa_maildir_flag_letters[] = {
    { 'D', FA_FLAG_DRAFT },
    { 'F', FA_FLAG_FLAGGED },
    { 'R', FA_FLAG_ANSWERED },
    { 'S', FA_FLAG_SEEN },
    { 'T', FA_FLAG_DELETED },
};

/* file is "cur/NAME" or "new/NAME", kept (not copied) in m */
void
fa_maildir_name_parse(fa_maildir_msg_t *m, char *file)
{
    char  *name = file + 4, *colon = strchr(name, ':');

    m->file = file;
    m->base_len = colon ? (size_t) (colon - name) : strlen(name);
    m->info = (colon && colon[1] == '2' && colon[2] == ',') ? colon + 3 : "";
    m->flags = fa_maildir_info_flags(m->info, &m->keywords);
    m->size = fa_maildir_name_size(name, m->base_len, 'S');
}

/* ",S=1234" in the base; (uint64_t) -1 when absent */
uint64_t
fa_maildir_name_size(const char *name, size_t len, char key)
{
    for (size_t i = 0; i + 3 < len; i++) {
        if (name[i] == ',' && name[i + 1] == key && name[i + 2] == '=') {
            size_t j = i + 3;
            while (j < len && isdigit((u_char) name[j])) {
                j++;
            }
            int64_t v = fa_atoi((const u_char *) name + i + 3, j - i - 3);
            return v < 0 ? (uint64_t) -1 : (uint64_t) v;
        }
    }
    return (uint64_t) -1;
}

uint32_t
fa_maildir_info_flags(const char *info, uint64_t *keywords)
{
    uint32_t  flags = 0;

    *keywords = 0;
    for (const char *p = info; *p && *p != ','; p++) {
        if (*p >= 'a' && *p <= 'z') {
            *keywords |= (uint64_t) 1 << (*p - 'a');
            continue;
        }
        for (size_t i = 0; i < fa_nelems(fa_maildir_flag_letters); i++) {
            if (fa_maildir_flag_letters[i].letter == *p) {
                flags |= fa_maildir_flag_letters[i].flag;
            }
        }
    }
    return flags;
}

static int
fa_maildir_letter_flag(char c)
{
    for (size_t i = 0; i < fa_nelems(fa_maildir_flag_letters); i++) {
        if (fa_maildir_flag_letters[i].letter == c) {
            return 1;
        }
    }
    return 0;
}

/*
 * The info for new flags.  Letters we do not map (P, "passed") are kept
 * from the old info; the result is in ASCII order, as the spec asks.
 */
char *
fa_maildir_info_make(fa_pool_t *pool, uint32_t flags, uint64_t keywords, const char *old)
{
    char      set[128] = { 0 };
    char     *out, *o;

    for (const char *p = old; p && *p && *p != ','; p++) {
        if (*p >= 'A' && *p <= 'Z' && !fa_maildir_letter_flag(*p)) {
            set[(u_char) *p] = 1;
        }
    }
    for (size_t i = 0; i < fa_nelems(fa_maildir_flag_letters); i++) {
        if (flags & fa_maildir_flag_letters[i].flag) {
            set[(u_char) fa_maildir_flag_letters[i].letter] = 1;
        }
    }
    for (int k = 0; k < FA_MAILDIR_KEYWORDS_MAX; k++) {
        if (keywords & ((uint64_t) 1 << k)) {
            set['a' + k] = 1;
        }
    }
    out = o = fa_pnalloc(pool, 64);
    if (out == NULL) {
        return NULL;
    }
    for (int c = 'A'; c <= 'z'; c++) {
        if (set[c]) {
            *o++ = (char) c;
        }
    }
    *o = '\0';
    return out;
}

/* "<secs>.M<usecs>P<pid>Q<n>.<host>": unique on this host, sortable by time */
char *
fa_maildir_unique(fa_maildir_t *md, fa_pool_t *pool)
{
    struct timespec  ts;
    size_t           size = 96 + strlen(md->host);
    char            *p = fa_pnalloc(pool, size);

    if (p == NULL) {
        return NULL;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    fa_snprintf(p, size, "%lld.M%ldP%ldQ%lu.%s", (long long) ts.tv_sec,
                (long) (ts.tv_nsec / 1000), (long) getpid(),
                (unsigned long) ++md->seq, md->host);
    return p;
}

/*
 * The message GUID: the uidlist's G field when there is one (a copy within
 * one folder needs a new file name but keeps the GUID), else the unique
 * part of the base, which a copy by hard link keeps as it is.
 */
fa_str_t
fa_maildir_msg_guid(fa_maildir_msg_t *m)
{
    fa_str_t     g;
    const char  *p, *name = m->file + 4;

    for (p = m->ext; p && *p; ) {
        if (p[0] == 'G' && (p == m->ext || p[-1] == ' ')) {
            g.data = (u_char *) p + 1;
            g.len = strcspn(p + 1, " ");
            return g;
        }
        p = strchr(p, ' ');
        p = p ? p + 1 : NULL;
    }
    g.data = (u_char *) name;
    g.len = strcspn(name, ",:");
    return g;
}

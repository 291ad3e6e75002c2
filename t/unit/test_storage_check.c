/*
 * The LMDB store's check: a store damaged on purpose through raw LMDB calls
 * on its environment (closed by the backend first), then the contract's
 * check finds each problem, a repair fixes them, a second check is clean,
 * and every message whose body is still there reads back exactly.  Then a
 * repair runs while another process appends large messages (blob files,
 * the rename-before-commit window): nothing of theirs is taken for an
 * orphan.
 */

#include "fa_storage_test.h"
#include "fa_test.h"

#if __has_include("fa_lmdb.h")

#include "fa_lmdb.h"
#include <dirent.h>

#define USER   "dora@example.org"
#define SMALL  3000
#define BIG    100000            /* over inline_max: a blob file */

static const char  *db_names[FA_LMDB_NDBS] = {
    "meta", "users", "mailboxes", "boxes", "messages", "modseq", "expunged", "refs",
    "bodies", "keywords"
};

static MDB_env  *raw_env;
static MDB_txn  *raw_txn;
static MDB_dbi   raw_dbi[FA_LMDB_NDBS];

/* ---- the store's files, behind the backend's back ---- */

static int
raw_open(void)
{
    char  path[PATH_MAX + 8];

    snprintf(path, sizeof(path), "%s/mail", t_dir);
    if (mdb_env_create(&raw_env) != 0 || mdb_env_set_maxdbs(raw_env, FA_LMDB_NDBS + 2) != 0
        || mdb_env_set_mapsize(raw_env, 64 * 1024 * 1024) != 0
        || mdb_env_open(raw_env, path, MDB_NOTLS, 0600) != 0
        || mdb_txn_begin(raw_env, NULL, 0, &raw_txn) != 0)
    {
        return -1;
    }
    for (int i = 0; i < FA_LMDB_NDBS; i++) {
        if (mdb_dbi_open(raw_txn, db_names[i], 0, &raw_dbi[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

static int
raw_close(void)
{
    int  rc = mdb_txn_commit(raw_txn);

    mdb_env_close(raw_env);
    return rc;
}

static int
raw_get(int db, void *key, size_t klen, MDB_val *val)
{
    MDB_val  k = { klen, key };

    return mdb_get(raw_txn, raw_dbi[db], &k, val);
}

static int
raw_put(int db, void *key, size_t klen, const void *data, size_t len)
{
    MDB_val  k = { klen, key }, v = { len, (void *) data };

    return mdb_put(raw_txn, raw_dbi[db], &k, &v, 0);
}

static int
raw_del(int db, void *key, size_t klen)
{
    MDB_val  k = { klen, key };

    return mdb_del(raw_txn, raw_dbi[db], &k, NULL);
}

static uint64_t
raw_user_id(void)
{
    MDB_val             v;
    fa_lmdb_user_rec_t  u;

    if (raw_get(FA_LMDB_USERS, USER, strlen(USER), &v) != 0) {
        return 0;
    }
    memcpy(&u, v.mv_data, sizeof(u));
    return u.id;
}

static uint64_t
raw_box_id(const char *name)
{
    u_char              buf[FA_LMDB_NAME_KEY_SIZE];
    fa_str_t            n = S(name);
    MDB_val             k = fa_lmdb_key_name(buf, raw_user_id(), &n), v;
    fa_lmdb_name_rec_t  rec;

    if (mdb_get(raw_txn, raw_dbi[FA_LMDB_NAMES], &k, &v) != 0) {
        return 0;
    }
    memcpy(&rec, v.mv_data, sizeof(rec));
    return rec.id;
}

static int
raw_box(uint64_t id, fa_lmdb_box_rec_t *rec, int put)
{
    u_char   k[8];
    MDB_val  v;

    fa_lmdb_key_id(k, id);
    if (put) {
        return raw_put(FA_LMDB_BOXES, k, 8, rec, sizeof(*rec));
    }
    if (raw_get(FA_LMDB_BOXES, k, 8, &v) != 0) {
        return -1;
    }
    memcpy(rec, v.mv_data, sizeof(*rec));
    return 0;
}

static int
raw_msg(uint64_t box, uint32_t uid, fa_lmdb_msg_rec_t *rec)
{
    u_char   k[12];
    MDB_val  v;

    fa_lmdb_key_uid(k, box, uid);
    if (raw_get(FA_LMDB_MESSAGES, k, 12, &v) != 0) {
        return -1;
    }
    memcpy(rec, v.mv_data, sizeof(*rec));
    return 0;
}

static void
blob_path(const u_char *id, char *buf, size_t size)
{
    char  hex[FA_LMDB_GUID_LEN + 1];

    fa_lmdb_hex(id, FA_LMDB_BODY_ID_LEN, hex);
    snprintf(buf, size, "%s/mail/blobs/%s", t_dir, hex);
}

static int
count_blobs(void)
{
    char            path[PATH_MAX + 16];
    DIR            *d;
    struct dirent  *e;
    int             n = 0;

    snprintf(path, sizeof(path), "%s/mail/blobs", t_dir);
    d = opendir(path);
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        n += e->d_type == DT_REG;
    }
    closedir(d);
    return n;
}

/* ---- running a check ---- */

typedef struct {
    int        done;
    fa_int_t   rc;
    fa_uint_t  n[4];
    char      *text;               /* every line, each ending with its level */
    size_t     len;
} check_t;

static void
check_report(void *data, fa_uint_t level, const char *text)
{
    check_t       *c = data;
    static const char *tag[] = { "info", "problem", "repaired", "unrepaired" };
    size_t         n = strlen(text) + 16;

    c->text = realloc(c->text, c->len + n);
    c->len += (size_t) snprintf(c->text + c->len, n, "%s [%s]\n", text, tag[level & 3]);
    c->n[level & 3]++;
    if (getenv("FACTEUR_TEST_VERBOSE")) {
        printf("#   %s [%s]\n", text, tag[level & 3]);
    }
}

static void
check_done(void *data, fa_int_t rc)
{
    check_t  *c = data;

    c->done = 1;
    c->rc = rc;
}

static fa_int_t
run_check(check_t *c, fa_uint_t flags)
{
    free(c->text);
    memset(c, 0, sizeof(*c));
    c->text = calloc(1, 1);
    t_in_call = 1;
    c->rc = B->check(t_st, flags, check_report, check_done, c);
    t_in_call = 0;
    if (c->n[0] + c->n[1] + c->n[2] + c->n[3]) {
        t_reentrant++;                     /* reported from inside the call */
    }
    if (c->rc == FA_AGAIN) {
        t_spin_until(&c->done, 120);
        c->rc = c->done ? c->rc : FA_ERROR;
    }
    return c->rc;
}

static fa_uint_t
problems(const check_t *c)
{
    return c->n[FA_CHECK_PROBLEM] + c->n[FA_CHECK_REPAIRED] + c->n[FA_CHECK_UNREPAIRED];
}

/* a finding matching every piece of PATTERN ("a*b": a, then b), at LEVEL */
static int
found(const check_t *c, const char *pattern, const char *level)
{
    char        want[512], *line, *end, *p;
    const char *text = c->text;

    for ( ; text && *text; text = end + 1) {
        end = strchr(text, '\n');
        if (end == NULL) {
            break;
        }
        line = strndup(text, (size_t) (end - text));
        snprintf(want, sizeof(want), "%s", pattern);
        p = line;
        for (char *piece = strtok(want, "*"); piece && p; piece = strtok(NULL, "*")) {
            p = strstr(p, piece);
            p = p ? p + strlen(piece) : NULL;
        }
        int hit = p != NULL && strstr(line, level) != NULL;
        free(line);
        if (hit) {
            return 1;
        }
    }
    return 0;
}

/* ---- the store before the damage ---- */

typedef struct {
    const char  *box;
    uint32_t     uid;
    uint64_t     seed;
    uint64_t     size;
    int          lost;
} msg_t;

static msg_t  msgs[] = {
    { "INBOX", 1, 1, SMALL, 0 },         /* copied to Work: a shared body */
    { "INBOX", 2, 2, SMALL + 1, 1 },     /* its inline body is deleted */
    { "INBOX", 3, 3, BIG, 1 },           /* its blob file is deleted */
    { "INBOX", 4, 4, SMALL + 2, 0 },     /* \Seen */
    { "INBOX", 5, 5, BIG + 1, 0 },       /* a blob that stays */
    { "INBOX", 6, 6, SMALL + 3, 0 },     /* its MODSEQ entry is deleted */
    { "INBOX", 7, 7, SMALL + 4, 1 },     /* its record is cut short */
    { "Work", 2, 1, SMALL, 0 },          /* the copy of INBOX 1, made last */
    { "Work", 1, 8, SMALL + 5, 0 },
    { "Lost", 1, 9, SMALL + 6, 0 },      /* its name goes: Recovered/ID */
    { "Gone", 1, 10, BIG + 2, 0 },       /* its mailbox record goes: made again */
};

static int
populate(void)
{
    fa_mailbox_t        *box;
    fa_store_request_t   seen = { FA_STORE_ADD, FA_FLAG_SEEN, NULL, 0, 0 };
    fa_uid_range_t       range = { 1, 1 };
    fa_uid_set_t         set = { &range, 1 };
    fa_str_t             work = S("Work");
    fa_append_result_t   res;
    t_res_t              r;
    int                  bad = 0;

    bad += t_create(USER, "Work", 0) != FA_OK;
    bad += t_create(USER, "Lost", 0) != FA_OK;
    bad += t_create(USER, "Gone", 0) != FA_OK;
    for (size_t i = 0; i < fa_nelems(msgs); i++) {
        if (strcmp(msgs[i].box, "Work") == 0 && msgs[i].uid == 2) {
            continue;                     /* the copy, below */
        }
        bad += t_append(USER, msgs[i].box, msgs[i].seed, msgs[i].size, &res) != FA_OK;
        bad += res.uid != msgs[i].uid;
    }
    bad += t_open(USER, "INBOX", &box, NULL) != FA_OK;
    T_CALL(&r, B->copy(box, &set, &work, 0, t_pool, t_copy_cb, &r));
    bad += r.rc != FA_OK || r.dst.ranges[0].first != 2;
    range.first = range.last = 4;
    T_CALL(&r, B->store(box, &set, &seen, t_pool, t_meta_cb, &r));
    bad += r.rc != FA_OK;
    B->mailbox_close(box);
    return bad;
}

/* ---- the damage ---- */

static u_char   stray_id[FA_LMDB_BODY_ID_LEN] = { 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4,
                                                  5, 6, 7, 8, 9, 10, 11, 12 };
static u_char   leak_id[FA_LMDB_BODY_ID_LEN] = { 0xfe, 0xed, 0xfa, 0xce, 1, 2, 3, 4,
                                                 5, 6, 7, 8, 9, 10, 11, 12 };
static uint64_t  inbox, work, lost, gone;

static int
damage(void)
{
    fa_lmdb_box_rec_t   b;
    fa_lmdb_msg_rec_t   m;
    fa_lmdb_ref_rec_t   ref;
    fa_lmdb_user_rec_t  u;
    MDB_val             v;
    u_char              k[FA_LMDB_NAME_KEY_SIZE];
    char                path[PATH_MAX + 64];
    uint32_t            uid = 77;
    fa_str_t            name = S("Lost");
    int                 bad = 0, fd;

    if (raw_open() != 0) {
        return -1;
    }
    inbox = raw_box_id("INBOX");
    work = raw_box_id("Work");
    lost = raw_box_id("Lost");
    gone = raw_box_id("Gone");
    bad += !inbox || !work || !lost || !gone;

    /* a counter: INBOX says 10 messages */
    bad += raw_box(inbox, &b, 0) != 0;
    b.messages = 10;
    b.unseen += 2;
    bad += raw_box(inbox, &b, 1) != 0;

    /* UIDNEXT below a UID, HIGHESTMODSEQ below a MODSEQ: Work */
    bad += raw_box(work, &b, 0) != 0;
    b.uidnext = 2;
    b.highestmodseq = 1;
    bad += raw_box(work, &b, 1) != 0;

    /* an inline body gone: INBOX 2 */
    bad += raw_msg(inbox, 2, &m) != 0;
    bad += raw_del(FA_LMDB_BODIES, m.body_id, FA_LMDB_BODY_ID_LEN) != 0;

    /* a blob file gone: INBOX 3 */
    bad += raw_msg(inbox, 3, &m) != 0;
    blob_path(m.body_id, path, sizeof(path));
    bad += unlink(path) != 0;

    /* a refs count wrong: INBOX 1's body, shared with Work, says 5 */
    bad += raw_msg(inbox, 1, &m) != 0;
    bad += raw_get(FA_LMDB_REFS, m.body_id, FA_LMDB_BODY_ID_LEN, &v) != 0;
    memcpy(&ref, v.mv_data, sizeof(ref));
    bad += ref.refs != 2;
    ref.refs = 5;
    bad += raw_put(FA_LMDB_REFS, m.body_id, FA_LMDB_BODY_ID_LEN, &ref, sizeof(ref)) != 0;

    /* a damaged message record: INBOX 7 cut to 10 bytes */
    fa_lmdb_key_uid(k, inbox, 7);
    bad += raw_put(FA_LMDB_MESSAGES, k, 12, "truncated!", 10) != 0;

    /* the MODSEQ index: INBOX 6's entry goes, a stale one for UID 77 comes */
    bad += raw_msg(inbox, 6, &m) != 0;
    fa_lmdb_key_seq(k, inbox, m.modseq);
    bad += raw_del(FA_LMDB_MODSEQ, k, 16) != 0;
    fa_lmdb_key_seq(k, inbox, 9999);
    bad += raw_put(FA_LMDB_MODSEQ, k, 16, &uid, sizeof(uid)) != 0;

    /* a leaked body: a reference and an inline copy nobody uses */
    ref.refs = 1;
    ref.kind = FA_LMDB_BODY_INLINE;
    ref.size = 5;
    bad += raw_put(FA_LMDB_REFS, leak_id, FA_LMDB_BODY_ID_LEN, &ref, sizeof(ref)) != 0;
    bad += raw_put(FA_LMDB_BODIES, leak_id, FA_LMDB_BODY_ID_LEN, "leak!", 5) != 0;

    /* quota usage off */
    bad += raw_get(FA_LMDB_USERS, USER, strlen(USER), &v) != 0;
    memcpy(&u, v.mv_data, sizeof(u));
    u.bytes_used += 12345;
    u.messages_used = 1;
    bad += raw_put(FA_LMDB_USERS, USER, strlen(USER), &u, sizeof(u)) != 0;

    /* a mailbox without its name, a name without its mailbox */
    fa_lmdb_key_name(k, u.id, &name);
    bad += raw_del(FA_LMDB_NAMES, k, 8 + name.len) != 0;
    fa_lmdb_key_id(k, gone);
    bad += raw_del(FA_LMDB_BOXES, k, 8) != 0;

    bad += raw_close() != 0;

    /* an orphan file: a body id nothing knows */
    blob_path(stray_id, path, sizeof(path));
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    bad += fd == -1 || write(fd, "orphan", 6) != 6;
    if (fd != -1) {
        close(fd);
    }
    return bad;
}

/* ---- the test ---- */

static int
write_conf(const char *dir)
{
    char   path[PATH_MAX + 32];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/facteur.conf", dir);
    f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f, "error_log stderr warn;\nstorage lmdb { path %s/mail; map_size 1m; "
            "inline_max 64k; }\n", dir);
    return fclose(f);
}

static void
test_finds(check_t *c)
{
    const char  *P = "[problem]";

    is_int(run_check(c, 0), FA_OK, "check of the damaged store runs");
    ok(found(c, "INBOX): counter messages is 10, the messages say 6", P),
       "a wrong message counter");
    ok(found(c, "INBOX): counter unseen is", P), "a wrong unseen counter");
    ok(found(c, "Work): UIDNEXT is 2, but UID 2 exists", P), "UIDNEXT below a UID");
    ok(found(c, "Work): HIGHESTMODSEQ is 1, but MODSEQ", P), "HIGHESTMODSEQ below a MODSEQ");
    ok(found(c, "INBOX): UID 2: its body * is missing (no inline copy), the message is lost",
             P), "a deleted inline body");
    ok(found(c, "INBOX): UID 3: its body * is missing (no file in blobs/)", P),
       "a deleted blob file");
    ok(found(c, "reference count 5, but 2 messages use it", P), "a wrong refs count");
    ok(found(c, "INBOX): UID 7: damaged record (10 bytes)", P), "a damaged message record");
    ok(found(c, "INBOX): UID 6 is missing from the MODSEQ index", P),
       "a message missing from the MODSEQ index");
    ok(found(c, "INBOX): stale MODSEQ index entry 9999 for UID 77, which does not exist", P),
       "a stale MODSEQ entry");
    ok(found(c, "body feedface* is used by no message (a reference record, an inline copy of "
             "5 bytes)", P), "a leaked inline body");
    ok(found(c, "body deadbeef* is used by no message (a file of 6 bytes, left by an "
             "interrupted append)", "[info]"), "an orphan blob file: a leftover, not a problem");
    ok(found(c, "user \"" USER "\": quota usage messages is 1, the messages say 10", P),
       "quota usage: messages");
    ok(found(c, "user \"" USER "\": quota usage bytes is", P), "quota usage: bytes");
    ok(found(c, USER ", no name): no mailbox name points to it", P), "a mailbox without a name");
    ok(found(c, "Gone): no mailbox record", P), "a name without its mailbox");
    is_int(c->n[FA_CHECK_UNREPAIRED] + c->n[FA_CHECK_REPAIRED], 0,
           "without --repair nothing is said to be repaired");
}

static void
test_repairs(check_t *c, fa_uint_t before)
{
    const char  *R = "[repaired]";

    is_int(run_check(c, FA_CHECK_REPAIR), FA_OK, "the repair runs");
    is_int(problems(c), before, "it finds what the check found");
    is_int(c->n[FA_CHECK_REPAIRED], before, "and repairs all of it");
    ok(found(c, "INBOX): UID 3: its body * the message is lost; its record is dropped", R),
       "a lost message is said to be lost");
    ok(found(c, "no mailbox name points to it; named \"Recovered/", R),
       "a mailbox without a name gets one");
    is_int(run_check(c, 0), FA_OK, "a second check runs");
    is_int(problems(c), 0, "and is clean");
    if (problems(c)) {
        printf("%s", c->text);
    }
    is_int(run_check(c, FA_CHECK_REPAIR), FA_OK, "a repair of a clean store");
    is_int(problems(c), 0, "finds nothing either");
}

static void
test_after(void)
{
    fa_mailbox_status_t  st;
    fa_mailbox_t        *box;
    fa_msg_stream_t     *m;
    fa_quota_t           q;
    uint64_t             bytes = 0, n = 0;
    t_res_t              r;
    char                 name[64], path[PATH_MAX + 64];
    int                  same = 1;

    for (size_t i = 0; i < fa_nelems(msgs); i++) {
        const char *mb = msgs[i].box;
        if (strcmp(mb, "Lost") == 0) {
            snprintf(name, sizeof(name), "Recovered/%" PRIu64, lost);
            mb = name;
        }
        if (t_open(USER, mb, &box, NULL) != FA_OK) {
            ok(0, "mailbox %s opens", mb);
            continue;
        }
        if (msgs[i].lost) {
            ok(B->message_open(box, msgs[i].uid, &m) == FA_STORAGE_NOTFOUND,
               "%s %u is gone", mb, msgs[i].uid);
            continue;
        }
        same &= t_read_matches(box, msgs[i].uid, msgs[i].seed, msgs[i].size);
        bytes += msgs[i].size;
        n++;
    }
    ok(same, "every message whose body is there reads back exactly");

    t_status(USER, "INBOX", &st);
    ok(st.messages == 4 && st.unseen == 3 && st.size == 3 * SMALL + BIG + 6,
       "INBOX's counters are the messages'");
    t_status(USER, "Work", &st);
    ok(st.messages == 2 && st.uidnext == 3, "Work's UIDNEXT is above its UIDs");
    t_status(USER, "Gone", &st);
    is_int(st.messages, 1, "the mailbox made again holds its message");
    t_quota_get(USER, &q);
    ok(q.messages_used == n && q.bytes_used == bytes, "quota usage is the messages'");

    t_open(USER, "INBOX", &box, NULL);
    t_changes(box, 0, &r);
    ok(r.rc == FA_OK && r.ch.nexpunged == 3 && r.ch.expunged[0] == 2
       && r.ch.expunged[1] == 3 && r.ch.expunged[2] == 7,
       "the dropped messages are expunged for QRESYNC");
    int six = 0;
    for (fa_uint_t i = 0; i < r.ch.nchanged; i++) {
        six |= r.ch.changed[i].uid == 6 && r.ch.changed[i].modseq == r.ch.highestmodseq;
    }
    ok(six, "the message missing from the index has the newest MODSEQ");
    blob_path(stray_id, path, sizeof(path));
    ok(access(path, F_OK) == -1, "the orphan file is removed");
    is_int(count_blobs(), 2, "the two blob files in use are left");
}

/* ---- what a repair leaves alone ---- */

static void
test_unrepairable(const char *dir)
{
    const char         *U = "[unrepaired]";
    fa_lmdb_msg_rec_t   m;
    u_char              k[12];
    char                path[PATH_MAX + 64];
    check_t             c = { 0 };
    int                 bad = 0, fd;

    t_teardown(0);
    bad += raw_open() != 0;
    /* a message record of a version this facteur does not know */
    bad += raw_msg(inbox, 1, &m) != 0;
    m.version = 2;
    fa_lmdb_key_uid(k, inbox, 100);
    bad += raw_put(FA_LMDB_MESSAGES, k, 12, &m, sizeof(m)) != 0;
    /* a blob cut short: Gone's message */
    bad += raw_msg(gone, 1, &m) != 0;
    bad += raw_close() != 0;
    blob_path(m.body_id, path, sizeof(path));
    bad += truncate(path, 1000) != 0;
    /* an administrator's file */
    snprintf(path, sizeof(path), "%s/mail/blobs/notes.txt", dir);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    bad += fd == -1;
    if (fd != -1) {
        close(fd);
    }
    is_int(bad, 0, "a record of another version, a truncated blob, a stray file");
    if (t_setup_dir(dir, 0) != 0) {
        ok(0, "the store opens again");
        return;
    }
    is_int(run_check(&c, FA_CHECK_REPAIR), FA_OK, "a repair runs");
    ok(found(&c, "blobs/notes.txt is not a body file", U), "a stray file is left alone");
    ok(found(&c, "INBOX): UID 100: a record of unknown version 2", U),
       "a record of another version is left alone");
    ok(found(&c, "Gone): UID 1: its body * has 1000 bytes, the message says 100002: the "
             "content is damaged", U), "damaged content is left alone");
    ok(found(&c, "its reference record says 100002 bytes, the body has 1000", "[repaired]"),
       "the reference record takes the file's size");
    is_int(c.n[FA_CHECK_UNREPAIRED], 3, "three things not repaired");
    ok(access(path, F_OK) == 0, "the stray file is still there");
    run_check(&c, FA_CHECK_REPAIR);
    ok(c.n[FA_CHECK_UNREPAIRED] == 3 && c.n[FA_CHECK_REPAIRED] == 0,
       "a second repair finds the same three, and nothing else");
    free(c.text);
}

/* ---- a repair while another process appends blobs ---- */

static int
child_append(const char *dir, int n)
{
    int  bad = 0;

    if (t_setup_dir(dir, 0) != 0) {
        return 2;
    }
    for (int i = 0; i < n; i++) {
        bad += t_append(USER, "Busy", 1000 + i, BIG + i, NULL) != FA_OK;
    }
    t_teardown(0);
    return bad ? 1 : 0;
}

static void
test_concurrent(const char *self)
{
    fa_mailbox_t  *box;
    check_t        c = { 0 };
    pid_t          pid;
    int            status, repairs = 0, dirty = 0, same = 1;

    t_create(USER, "Busy", 0);
    pid = fork();
    if (pid == 0) {
        execl(self, self, "child-append", t_dir, "60", (char *) NULL);
        _exit(127);
    }
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (run_check(&c, FA_CHECK_REPAIR) == FA_OK) {
            repairs++;
            dirty += problems(&c) != 0;
            if (problems(&c)) {
                printf("%s", c.text);
            }
        }
    }
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the other process appended 60 blobs");
    ok(repairs > 0, "while %d repairs ran", repairs);
    is_int(dirty, 0, "none of which found a problem (no file in flight taken for an orphan)");
    t_open(USER, "Busy", &box, NULL);
    for (int i = 0; i < 60; i++) {
        same &= t_read_matches(box, (uint32_t) i + 1, 1000 + i, BIG + i);
    }
    ok(same, "and every message reads back");
    run_check(&c, 0);
    is_int(problems(&c), 0, "a last check is clean");
    free(c.text);
}

int
main(int argc, char **argv)
{
    char     tmpl[] = "/tmp/fa-check-XXXXXX";
    check_t  c = { 0 };
    fa_uint_t before;

    if (&fa_lmdb_module == NULL) {
        printf("1..0 # SKIP the LMDB backend is not built\n");
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "child-append") == 0) {
        return child_append(argv[2], atoi(argv[3]));
    }
    if (mkdtemp(tmpl) == NULL || write_conf(tmpl) != 0 || t_setup_dir(tmpl, 0) != 0) {
        ok(0, "the store opens");
        return done_testing();
    }
    ok(B->check != NULL, "the LMDB backend has a check");
    is_int(populate(), 0, "a store with inline bodies, blobs, a copy, four mailboxes");
    is_int(run_check(&c, 0), FA_OK, "check runs");
    is_int(problems(&c), 0, "a healthy store is clean");
    ok(found(&c, "checked 1 users, 4 mailboxes, 11 messages, 10 bodies (3 files)", "[info]"),
       "and says what it checked");

    t_teardown(0);
    is_int(damage(), 0, "the store damaged through raw LMDB calls");
    if (t_setup_dir(tmpl, 0) != 0) {
        ok(0, "the damaged store opens");
        return done_testing();
    }
    test_finds(&c);
    before = problems(&c);
    run_check(&c, 0);
    is_int(problems(&c), before, "a check changes nothing: a second one finds the same");
    test_repairs(&c, before);
    test_after();
    test_concurrent(argv[0]);
    test_unrepairable(tmpl);
    is_int(t_reentrant, 0, "no callback ran inside a call");
    free(c.text);
    t_teardown(1);
    return done_testing();
}

#else

int
main(void)
{
    printf("1..0 # SKIP the LMDB backend is not built\n");
    return 0;
}

#endif

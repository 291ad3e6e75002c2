/*
 * The storage contract (fa_storage.h), checked through the backend table
 * only, so the same program runs against any backend: the LMDB one by
 * default, another with FACTEUR_STORAGE_CONF_SNIPPET (see fa_storage_test.h).
 *
 * Namespace rules, UIDVALIDITY/UIDNEXT/MODSEQ rules, streaming appends with
 * exact read-back (a 50 MB one without the memory to hold it), quotas,
 * flags and keywords with UNCHANGEDSINCE, copy and move with UID maps,
 * expunge and changes_since, status counters, and change notification
 * within the process and from another process.
 */

#include "fa_storage_test.h"
#include "fa_test.h"

#define ALICE  "alice@example.org"
#define BOB    "bob@example.org"

static fa_uid_set_t
set1(fa_uid_range_t *r, uint32_t first, uint32_t last)
{
    fa_uid_set_t  s = { r, 1 };

    r->first = first;
    r->last = last;
    return s;
}

static void
test_namespace(void)
{
    fa_mailbox_status_t  s1, s2;
    fa_mailbox_info_t   *b;
    t_res_t              r;

    is_int(t_list(ALICE, &r), FA_OK, "list for a user never seen");
    ok(t_listed(&r, "INBOX") != NULL, "a new namespace has an INBOX");
    is_int(t_create(ALICE, "Archive", 0), FA_OK, "create");
    is_int(t_create(ALICE, "Archive", 0), FA_STORAGE_EXISTS, "create twice: EXISTS");
    is_int(t_create(ALICE, "INBOX", 0), FA_STORAGE_EXISTS, "create INBOX: EXISTS");
    is_int(t_create(ALICE, "a//b", 0), FA_STORAGE_INVALID, "empty level: INVALID");
    is_int(t_create(ALICE, "../x", 0), FA_STORAGE_INVALID, "..: INVALID");
    is_int(t_create(ALICE, "a*", 0), FA_STORAGE_INVALID, "wildcard: INVALID");
    is_int(t_create(ALICE, "", 0), FA_STORAGE_INVALID, "empty name: INVALID");
    is_int(t_create(ALICE, "Sent", FA_USE_SENT), FA_OK, "create with special-use");
    is_int(t_create(ALICE, "Work/Projects/2026", 0), FA_OK, "create a deep name");
    is_int(t_create(ALICE, "Entw\xc3\xbcrfe", FA_USE_DRAFTS), FA_OK, "a UTF-8 name");

    t_list(ALICE, &r);
    ok(t_listed(&r, "Work/Projects/2026") && t_listed(&r, "Work/Projects")
       && t_listed(&r, "Work"), "the parents are listed");
    b = t_listed(&r, "Work");
    ok(b && b->has_children, "a parent has children");
    b = t_listed(&r, "Archive");
    ok(b && !b->has_children && !b->noselect, "a leaf has none");
    b = t_listed(&r, "Sent");
    ok(b && b->special_use == FA_USE_SENT, "special-use listed");
    ok(t_listed(&r, "Entw\xc3\xbcrfe") != NULL, "UTF-8 name listed as given");

    is_int(t_subscribe(ALICE, "Archive", 1), FA_OK, "subscribe");
    t_list(ALICE, &r);
    ok(t_listed(&r, "Archive") && t_listed(&r, "Archive")->subscribed, "subscribed");
    is_int(t_subscribe(ALICE, "Archive", 0), FA_OK, "unsubscribe");
    t_list(ALICE, &r);
    ok(t_listed(&r, "Archive") && !t_listed(&r, "Archive")->subscribed, "unsubscribed");

    is_int(t_status(ALICE, "INBOX", &s1), FA_OK, "status INBOX");
    ok(s1.uidvalidity > 0 && s1.uidnext == 1 && s1.messages == 0, "an empty mailbox");
    is_int(t_status(ALICE, "inbox", &s2), FA_OK, "INBOX is case-insensitive");
    is_int(s2.uidvalidity, s1.uidvalidity, "same mailbox");
    is_int(t_status(ALICE, "Nope", &s2), FA_STORAGE_NOTFOUND, "status of nothing");
}

static void
test_rename_delete(void)
{
    fa_mailbox_status_t  s1, s2;
    fa_mailbox_info_t   *b;
    t_res_t              r;

    /* rename keeps the mailbox (UIDVALIDITY, messages) and moves the subtree */
    t_append(ALICE, "Archive", 1, 100, NULL);
    t_status(ALICE, "Archive", &s1);
    is_int(t_rename(ALICE, "Archive", "Old/Archive"), FA_OK, "rename");
    is_int(t_status(ALICE, "Archive", &s2), FA_STORAGE_NOTFOUND, "the old name is gone");
    is_int(t_status(ALICE, "Old/Archive", &s2), FA_OK, "the new name is there");
    ok(s2.uidvalidity == s1.uidvalidity && s2.messages == 1, "with its messages");
    is_int(t_rename(ALICE, "Work", "Job"), FA_OK, "rename a parent");
    is_int(t_status(ALICE, "Job/Projects/2026", &s2), FA_OK, "children moved along");
    is_int(t_status(ALICE, "Work/Projects", &s2), FA_STORAGE_NOTFOUND, "none left behind");
    is_int(t_rename(ALICE, "Job", "Sent"), FA_STORAGE_EXISTS, "rename onto a name: EXISTS");
    is_int(t_rename(ALICE, "Nope", "Nope2"), FA_STORAGE_NOTFOUND, "rename nothing");
    is_int(t_rename(ALICE, "Job", "Job/Sub"), FA_STORAGE_INVALID, "into its own subtree");

    /* delete */
    is_int(t_delete(ALICE, "Job/Projects/2026"), FA_OK, "delete a leaf");
    is_int(t_delete(ALICE, "Job/Projects/2026"), FA_STORAGE_NOTFOUND, "delete twice");
    ok(t_delete(ALICE, "INBOX") != FA_OK, "INBOX cannot be deleted");
    is_int(t_delete(ALICE, "Job"), FA_OK, "delete a parent");
    t_list(ALICE, &r);
    b = t_listed(&r, "Job");
    ok(t_listed(&r, "Job/Projects") && (b == NULL || b->noselect),
       "its child stays; the parent is gone or \\Noselect");
    is_int(t_status(ALICE, "Job", &s2), FA_STORAGE_NOTFOUND, "the parent is not selectable");

    /* a name created again is another mailbox */
    t_create(ALICE, "Tmp", 0);
    t_status(ALICE, "Tmp", &s1);
    t_delete(ALICE, "Tmp");
    t_create(ALICE, "Tmp", 0);
    t_status(ALICE, "Tmp", &s2);
    ok(s2.uidvalidity > s1.uidvalidity, "a re-created name gets a greater UIDVALIDITY");

    t_list(BOB, &r);
    ok(t_listed(&r, "Sent") == NULL && t_listed(&r, "INBOX") != NULL,
       "users do not see each other's mailboxes");
}

static void
test_uids_and_modseq(void)
{
    fa_append_result_t   a[4];
    fa_mailbox_status_t  s;
    fa_mailbox_t        *box;
    fa_store_request_t   req = { FA_STORE_ADD, FA_FLAG_DELETED, NULL, 0, 0 };
    fa_uid_range_t       range;
    fa_uid_set_t         set;
    t_res_t              r;

    t_create(ALICE, "Seq", 0);
    for (int i = 0; i < 3; i++) {
        is_int(t_append(ALICE, "Seq", 10 + i, 500, &a[i]), FA_OK, "append %d", i);
    }
    ok(a[0].uid < a[1].uid && a[1].uid < a[2].uid, "UIDs strictly increase");
    ok(a[0].modseq < a[1].modseq && a[1].modseq < a[2].modseq, "MODSEQs strictly increase");
    t_open(ALICE, "Seq", &box, &s);
    ok(s.uidvalidity == a[0].uidvalidity && s.uidnext > a[2].uid && s.messages == 3,
       "status agrees: UIDVALIDITY, UIDNEXT, messages");
    ok(s.highestmodseq >= a[2].modseq, "HIGHESTMODSEQ covers the appends");

    set = set1(&range, a[2].uid, a[2].uid);
    T_CALL(&r, B->store(box, &set, &req, t_pool, t_meta_cb, &r));
    ok(r.rc == FA_OK && r.n == 1 && r.msgs[0].modseq > s.highestmodseq,
       "a store gets a new MODSEQ");
    T_CALL(&r, B->expunge(box, NULL, t_pool, t_changes_cb, &r));
    ok(r.rc == FA_OK && r.ch.nexpunged == 1 && r.ch.expunged[0] == a[2].uid, "expunged");
    is_int(t_append(ALICE, "Seq", 13, 500, &a[3]), FA_OK, "append after an expunge");
    ok(a[3].uid > a[2].uid, "the last UID is never reused");
    B->mailbox_close(box);
}

static void
test_append_sizes(void)
{
    static const uint64_t  sizes[] = { 0, 1, 77, 4095, 65535, 65536, 65537, 300000,
                                       1048583 };
    fa_append_result_t     res[fa_nelems(sizes)];
    fa_mailbox_t          *box;
    fa_msg_stream_t       *m;
    t_res_t                r;
    int                    all = 1, fd;
    uint64_t               off;

    t_create(ALICE, "Sizes", 0);
    for (size_t i = 0; i < fa_nelems(sizes); i++) {
        if (t_append_stream(ALICE, "Sizes", 100 + i, sizes[i], 1 + i * 7919, FA_FLAG_SEEN,
                            1700000000 + (time_t) i, 0, &res[i]) != FA_OK)
        {
            all = 0;
        }
    }
    ok(all, "appends of %zu sizes from 0 to 1 MB, in chunks of varied sizes",
       fa_nelems(sizes));
    t_open(ALICE, "Sizes", &box, NULL);
    for (size_t i = 0; i < fa_nelems(sizes); i++) {
        ok(t_read_matches(box, res[i].uid, 100 + i, sizes[i]),
           "%" PRIu64 " bytes read back exactly", sizes[i]);
    }
    is_int(t_fetch(box, 1, UINT32_MAX, &r), FA_OK, "fetch_meta");
    is_int(r.n, fa_nelems(sizes), "every message");
    all = r.n == fa_nelems(sizes);
    for (size_t i = 0; all && i < r.n; i++) {
        all = r.msgs[i].uid == res[i].uid && r.msgs[i].size == sizes[i]
              && r.msgs[i].internal_date == 1700000000 + (time_t) i
              && r.msgs[i].flags == FA_FLAG_SEEN && r.msgs[i].guid.len > 0
              && (i == 0 || !fa_str_equal(&r.msgs[i].guid, &r.msgs[i - 1].guid));
    }
    ok(all, "metadata: UID, size, internal date, flags, distinct GUIDs");

    /* message_fd, where offered, gives the same bytes */
    if (B->message_open(box, res[7].uid, &m) == FA_OK) {
        if (B->message_fd(m, &fd, &off) == FA_OK) {
            u_char a[64], b[64];
            ok(pread(fd, a, 64, (off_t) off + 1000) == 64
               && B->message_read(m, 1000, b, 64, NULL, NULL) == 64 && memcmp(a, b, 64) == 0,
               "message_fd serves the message");
        }
        B->message_close(m);
    }
    ok(B->message_open(box, 999999, &m) == FA_STORAGE_NOTFOUND, "no such UID");
    B->mailbox_close(box);
}

static void
test_append_large(void)
{
    uint64_t              size = 50 * 1024 * 1024;
    fa_append_result_t    res;
    fa_mailbox_t         *box;
    long                  before, after_append, after_read;

    before = t_rss_kb("RssAnon:");
    is_int(t_append_stream(ALICE, "INBOX", 4242, size, 256 * 1024, 0, 0, 0, &res), FA_OK,
           "a 50 MB append");
    after_append = t_rss_kb("RssAnon:");
    t_open(ALICE, "INBOX", &box, NULL);
    ok(t_read_matches(box, res.uid, 4242, size), "50 MB read back exactly");
    after_read = t_rss_kb("RssAnon:");
    printf("# anonymous RSS: %ld kB before, +%ld kB after the append, +%ld kB after the "
           "read\n", before, after_append - before, after_read - before);
    ok(before > 0 && after_append - before < 16 * 1024 && after_read - before < 16 * 1024,
       "RSS grew by far less than 50 MB");
    B->mailbox_close(box);
}

static void
test_append_failures(void)
{
    fa_mailbox_status_t   s1, s2;
    fa_append_request_t   req;
    fa_append_t          *a;
    fa_str_t              u = S(ALICE), n = S("NoSuchBox"), inbox = S("INBOX");
    fa_int_t              rc;

    t_status(ALICE, "INBOX", &s1);
    memset(&req, 0, sizeof(req));
    rc = B->append_begin(t_st, &u, &inbox, &req, &a);
    if (rc == FA_OK) {
        B->append_write(a, (u_char *) "Subject: x\r\n\r\nbody\r\n", 20);
        B->append_abort(a);
    }
    t_status(ALICE, "INBOX", &s2);
    ok(rc == FA_OK && s2.messages == s1.messages && s2.uidnext == s1.uidnext,
       "an aborted append leaves nothing");
    rc = B->append_begin(t_st, &u, &n, &req, &a);
    if (rc == FA_OK) {
        t_res_t r;
        B->append_write(a, (u_char *) "x", 1);
        rc = T_CALL(&r, B->append_commit(a, t_append_cb, &r));
    }
    is_int(rc, FA_STORAGE_NOTFOUND, "append to a mailbox that does not exist");
}

static void
test_concurrent_appends(void)
{
    enum { N = 40 };
    fa_append_t          *a[N];
    t_res_t               r[N];
    fa_append_request_t   req;
    fa_str_t              u = S(ALICE), n = S("Busy");
    int                   all = 1, done = 0;

    t_create(ALICE, "Busy", 0);
    memset(&req, 0, sizeof(req));
    for (int i = 0; i < N; i++) {
        memset(&r[i], 0, sizeof(r[i]));
        if (B->append_begin(t_st, &u, &n, &req, &a[i]) != FA_OK) {
            all = 0;
            continue;
        }
        B->append_write(a[i], (u_char *) "Subject: many\r\n\r\nhi\r\n", 21);
        r[i].rc = B->append_commit(a[i], t_append_cb, &r[i]);
        r[i].done = r[i].rc != FA_AGAIN;
    }
    for (double end = t_now() + 60; done < N && t_now() < end; ) {
        t_loop_once();
        done = 0;
        for (int i = 0; i < N; i++) {
            done += r[i].done;
        }
    }
    for (int i = 0; i < N; i++) {
        all = all && r[i].rc == FA_OK;
        for (int j = 0; j < i && all; j++) {
            all = r[i].app.uid != r[j].app.uid;
        }
    }
    ok(all && done == N, "%d appends in flight at once: all durable, distinct UIDs", N);
}

static void
test_quota(void)
{
    fa_quota_t           q;
    fa_mailbox_status_t  s1, s2;
    fa_mailbox_t        *box;
    t_res_t              r;

    is_int(t_quota_set(BOB, 10000, 3), FA_OK, "quota_set");
    is_int(t_quota_get(BOB, &q), FA_OK, "quota_get");
    ok(q.bytes_limit == 10000 && q.messages_limit == 3 && q.bytes_used == 0
       && q.messages_used == 0, "limits set, nothing used");
    is_int(t_append(BOB, "INBOX", 500, 5000, NULL), FA_OK, "within the quota");
    t_quota_get(BOB, &q);
    ok(q.bytes_used == 5000 && q.messages_used == 1, "usage counted");
    t_status(BOB, "INBOX", &s1);
    is_int(t_append_stream(BOB, "INBOX", 501, 6000, 1000, 0, 0, 6000, NULL),
           FA_STORAGE_OVERQUOTA, "over the byte quota (size announced)");
    is_int(t_append(BOB, "INBOX", 502, 6000, NULL), FA_STORAGE_OVERQUOTA,
           "over the byte quota (found at commit)");
    t_status(BOB, "INBOX", &s2);
    t_quota_get(BOB, &q);
    ok(s2.messages == s1.messages && s2.uidnext == s1.uidnext && q.bytes_used == 5000,
       "nothing of a refused append is visible");
    is_int(t_append(BOB, "INBOX", 503, 10, NULL), FA_OK, "second message");
    is_int(t_append(BOB, "INBOX", 504, 10, NULL), FA_OK, "third message");
    is_int(t_append(BOB, "INBOX", 505, 10, NULL), FA_STORAGE_OVERQUOTA,
           "over the message quota");

    t_create(BOB, "Copies", 0);
    t_open(BOB, "INBOX", &box, NULL);
    fa_uid_range_t range;
    fa_uid_set_t set = set1(&range, 1, UINT32_MAX);
    fa_str_t dest = S("Copies");
    T_CALL(&r, B->copy(box, &set, &dest, 0, t_pool, t_copy_cb, &r));
    is_int(r.rc, FA_STORAGE_OVERQUOTA, "a copy over the quota");
    T_CALL(&r, B->copy(box, &set, &dest, 1, t_pool, t_copy_cb, &r));
    is_int(r.rc, FA_OK, "a move stays within it");
    t_quota_get(BOB, &q);
    ok(q.messages_used == 3 && q.bytes_used == 5020, "a move does not change usage");
    B->mailbox_close(box);
    is_int(t_quota_set(BOB, 0, 0), FA_OK, "quota removed");
    is_int(t_append(BOB, "INBOX", 506, 20000, NULL), FA_OK, "0 means unlimited");
}

/* the keyword table's name for bit I of a message's keywords */
static int
has_keyword(fa_mailbox_status_t *st, uint64_t bits, const char *name)
{
    for (fa_uint_t i = 0; i < st->nkeywords && i < 64; i++) {
        if ((bits & ((uint64_t) 1 << i)) && t_str_is(&st->keywords[i], name)) {
            return 1;
        }
    }
    return 0;
}

static void
test_store(void)
{
    fa_append_result_t   a[2];
    fa_mailbox_status_t  s;
    fa_mailbox_t        *box;
    fa_str_t             kw[2] = { fa_string("$Important"), fa_string("project-x") };
    fa_store_request_t   req;
    fa_uid_range_t       range;
    fa_uid_set_t         set;
    t_res_t              r;
    uint64_t             m1;

    t_create(ALICE, "Flags", 0);
    t_append(ALICE, "Flags", 700, 300, &a[0]);
    t_append(ALICE, "Flags", 701, 300, &a[1]);
    t_open(ALICE, "Flags", &box, &s);
    is_int(s.unseen, 2, "two unseen");
    is_int(s.first_unseen_uid, a[0].uid, "first unseen");

    req = (fa_store_request_t) { FA_STORE_ADD, FA_FLAG_SEEN | FA_FLAG_FLAGGED, kw, 2, 0 };
    set = set1(&range, a[0].uid, a[0].uid);
    T_CALL(&r, B->store(box, &set, &req, t_pool, t_meta_cb, &r));
    ok(r.rc == FA_OK && r.n == 1 && r.msgs[0].uid == a[0].uid
       && r.msgs[0].flags == (FA_FLAG_SEEN | FA_FLAG_FLAGGED), "flags added");
    m1 = r.n ? r.msgs[0].modseq : 0;
    ok(m1 > a[1].modseq, "with a new MODSEQ");
    t_status(ALICE, "Flags", &s);
    ok(s.unseen == 1 && s.first_unseen_uid == a[1].uid, "unseen counters follow");
    ok(r.n && has_keyword(&s, r.msgs[0].keywords, "$Important")
       && has_keyword(&s, r.msgs[0].keywords, "project-x"), "keywords added, named");

    req = (fa_store_request_t) { FA_STORE_REMOVE, FA_FLAG_FLAGGED, kw, 1, m1 };
    T_CALL(&r, B->store(box, &set, &req, t_pool, t_meta_cb, &r));
    ok(r.rc == FA_OK && r.n == 1 && r.msgs[0].flags == FA_FLAG_SEEN
       && !has_keyword(&s, r.msgs[0].keywords, "$Important")
       && has_keyword(&s, r.msgs[0].keywords, "project-x"),
       "UNCHANGEDSINCE current: flag and keyword removed");
    T_CALL(&r, B->store(box, &set, &req, t_pool, t_meta_cb, &r));
    is_int(r.rc, FA_STORAGE_MODIFIED, "UNCHANGEDSINCE stale: MODIFIED");
    t_fetch(box, a[0].uid, a[0].uid, &r);
    ok(r.n == 1 && r.msgs[0].flags == FA_FLAG_SEEN, "and nothing changed");

    req = (fa_store_request_t) { FA_STORE_REPLACE, FA_FLAG_ANSWERED, NULL, 0, 0 };
    set = set1(&range, a[0].uid, a[1].uid);
    T_CALL(&r, B->store(box, &set, &req, t_pool, t_meta_cb, &r));
    ok(r.rc == FA_OK && r.n == 2 && r.msgs[0].flags == FA_FLAG_ANSWERED
       && r.msgs[1].flags == FA_FLAG_ANSWERED && r.msgs[0].keywords == 0,
       "replace: flags and keywords set as given");
    t_status(ALICE, "Flags", &s);
    is_int(s.unseen, 2, "both unseen again");
    B->mailbox_close(box);
}

static void
test_copy_move(void)
{
    fa_append_result_t   a[3];
    fa_mailbox_status_t  before, dst;
    fa_mailbox_t        *box, *dbox;
    fa_uid_range_t       range;
    fa_uid_set_t         set;
    fa_str_t             dest = S("Dest"), none = S("NoSuch");
    t_res_t              r, src, copies;
    uint64_t             h;

    t_create(ALICE, "Src", 0);
    t_create(ALICE, "Dest", 0);
    for (int i = 0; i < 3; i++) {
        t_append(ALICE, "Src", 800 + i, 1000 + i * 100000, &a[i]);
    }
    t_status(ALICE, "Dest", &before);
    t_open(ALICE, "Src", &box, NULL);
    t_fetch(box, 1, UINT32_MAX, &src);

    set = set1(&range, a[0].uid, a[1].uid);
    T_CALL(&r, B->copy(box, &set, &dest, 0, t_pool, t_copy_cb, &r));
    is_int(r.rc, FA_OK, "copy");
    ok(r.uidvalidity == before.uidvalidity && r.src.nranges == 1 && r.dst.nranges == 1
       && r.src.ranges[0].first == a[0].uid && r.src.ranges[0].last == a[1].uid
       && r.dst.ranges[0].first >= before.uidnext
       && r.dst.ranges[0].last == r.dst.ranges[0].first + 1, "COPYUID maps");
    t_open(ALICE, "Dest", &dbox, &dst);
    ok(dst.messages == 2 && dst.uidnext > r.dst.ranges[0].last, "destination counters");
    t_fetch(dbox, 1, UINT32_MAX, &copies);
    ok(copies.n == 2 && fa_str_equal(&copies.msgs[0].guid, &src.msgs[0].guid)
       && fa_str_equal(&copies.msgs[1].guid, &src.msgs[1].guid), "GUIDs survive a copy");
    ok(copies.n == 2 && t_read_matches(dbox, copies.msgs[0].uid, 800, 1000)
       && t_read_matches(dbox, copies.msgs[1].uid, 801, 101000), "copied bodies read back");

    t_changes(box, 0, &r);
    h = r.ch.highestmodseq;
    set = set1(&range, a[2].uid, a[2].uid);
    T_CALL(&r, B->copy(box, &set, &dest, 1, t_pool, t_copy_cb, &r));
    ok(r.rc == FA_OK && r.src.nranges == 1 && r.src.ranges[0].first == a[2].uid, "move");
    t_fetch(box, a[2].uid, a[2].uid, &r);
    is_int(r.n, 0, "gone from the source");
    t_changes(box, h, &r);
    ok(r.rc == FA_OK && r.ch.nexpunged == 1 && r.ch.expunged[0] == a[2].uid
       && r.ch.highestmodseq > h, "the source reports it expunged");
    t_fetch(dbox, 1, UINT32_MAX, &copies);
    ok(copies.n == 3 && fa_str_equal(&copies.msgs[2].guid, &src.msgs[2].guid)
       && t_read_matches(dbox, copies.msgs[2].uid, 802, 201000),
       "the moved message, same GUID and bytes");
    /* a copy's body outlives the original */
    B->mailbox_close(dbox);
    set = set1(&range, 1, UINT32_MAX);
    T_CALL(&r, B->copy(box, &set, &none, 0, t_pool, t_copy_cb, &r));
    is_int(r.rc, FA_STORAGE_NOTFOUND, "copy to a mailbox that does not exist");
    is_int(t_delete(ALICE, "Src"), FA_OK, "delete the source");
    t_open(ALICE, "Dest", &dbox, NULL);
    ok(t_read_matches(dbox, copies.msgs[0].uid, 800, 1000)
       && t_read_matches(dbox, copies.msgs[1].uid, 801, 101000),
       "copies stay readable after the source is deleted");
    t_fetch(box, 1, UINT32_MAX, &r);
    is_int(r.rc, FA_STORAGE_NOTFOUND, "a handle on a deleted mailbox: NOTFOUND");
    B->mailbox_close(dbox);
    B->mailbox_close(box);
}

static void
test_expunge_changes(void)
{
    fa_append_result_t   a[4];
    fa_mailbox_status_t  s;
    fa_mailbox_t        *box;
    fa_store_request_t   del = { FA_STORE_ADD, FA_FLAG_DELETED, NULL, 0, 0 };
    fa_uid_range_t       ranges[2];
    fa_uid_set_t         set = { ranges, 2 };
    t_res_t              r;
    uint64_t             h0, size = 0;
    uint32_t             unseen = 0, deleted = 0, first_unseen = 0;

    t_create(ALICE, "Exp", 0);
    for (int i = 0; i < 4; i++) {
        t_append(ALICE, "Exp", 900 + i, 200 + i, &a[i]);
    }
    t_open(ALICE, "Exp", &box, &s);
    h0 = s.highestmodseq;
    ranges[0] = (fa_uid_range_t) { a[0].uid, a[0].uid };
    ranges[1] = (fa_uid_range_t) { a[2].uid, a[2].uid };
    T_CALL(&r, B->store(box, &set, &del, t_pool, t_meta_cb, &r));
    t_status(ALICE, "Exp", &s);
    is_int(s.deleted, 2, "two \\Deleted");

    ranges[0] = (fa_uid_range_t) { a[0].uid, a[1].uid };
    set.nranges = 1;
    T_CALL(&r, B->expunge(box, &set, t_pool, t_changes_cb, &r));
    ok(r.rc == FA_OK && r.ch.nexpunged == 1 && r.ch.expunged[0] == a[0].uid,
       "UID EXPUNGE: only the \\Deleted ones in the set");
    T_CALL(&r, B->expunge(box, NULL, t_pool, t_changes_cb, &r));
    ok(r.rc == FA_OK && r.ch.nexpunged == 1 && r.ch.expunged[0] == a[2].uid,
       "EXPUNGE: every \\Deleted one");

    t_changes(box, h0, &r);
    ok(r.rc == FA_OK && r.ch.nexpunged == 2 && r.ch.expunged[0] == a[0].uid
       && r.ch.expunged[1] == a[2].uid && !r.ch.too_old, "changes_since: both expunges");
    ok(r.ch.highestmodseq > h0, "HIGHESTMODSEQ moved");
    h0 = r.ch.highestmodseq;
    t_changes(box, h0, &r);
    ok(r.rc == FA_OK && r.ch.nchanged == 0 && r.ch.nexpunged == 0, "nothing since now");
    t_append(ALICE, "Exp", 910, 10, &a[0]);
    t_changes(box, h0, &r);
    ok(r.ch.nchanged == 1 && r.ch.changed[0].uid == a[0].uid && r.ch.nexpunged == 0,
       "an arrival is a change");

    /* the counters agree with the messages */
    t_fetch(box, 1, UINT32_MAX, &r);
    for (fa_uint_t i = 0; i < r.n; i++) {
        size += r.msgs[i].size;
        unseen += !(r.msgs[i].flags & FA_FLAG_SEEN);
        deleted += !!(r.msgs[i].flags & FA_FLAG_DELETED);
        first_unseen = first_unseen ? first_unseen
                                    : (r.msgs[i].flags & FA_FLAG_SEEN) ? 0 : r.msgs[i].uid;
    }
    t_status(ALICE, "Exp", &s);
    ok(s.messages == r.n && s.size == size && s.unseen == unseen && s.deleted == deleted
       && s.first_unseen_uid == first_unseen, "status counters match the messages");
    B->mailbox_close(box);
}

/* ---- notification ---- */

static int  watch_calls;

static void
watch_cb(void *data)
{
    (void) data;
    watch_calls++;
}

/* the child: open the same store, append one message to Alice's INBOX */
static int
child_append(const char *dir)
{
    int  rc;

    if (t_setup_dir(dir, 0) != 0) {
        return 2;
    }
    rc = t_append(ALICE, "INBOX", 31337, 1234, NULL) == FA_OK ? 0 : 1;
    t_teardown(0);
    return rc;
}

static void
test_watch(const char *self)
{
    fa_storage_watch_t  *w;
    fa_str_t             u = S(ALICE), n = S("INBOX");
    double               t0;
    pid_t                pid;
    int                  status;

    if (B->watch == NULL) {
        ok(1, "# SKIP no watch in this backend");
        return;
    }
    is_int(B->watch(t_st, &u, &n, watch_cb, NULL, &w), FA_OK, "watch");
    t_append(ALICE, "INBOX", 950, 50, NULL);
    t_spin_until(&watch_calls, 2);
    ok(watch_calls > 0, "told of a change made in this process");

    watch_calls = 0;
    t0 = t_now();
    pid = fork();
    if (pid == 0) {
        execl(self, self, "child-append", t_dir, (char *) NULL);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "another process appended");
    t_spin_until(&watch_calls, 2);
    ok(watch_calls > 0, "told of a change made in another process (%.0f ms)",
       (t_now() - t0) * 1000);
    B->unwatch(w);
}

int
main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "child-append") == 0) {
        return child_append(argv[2]);
    }
    if (t_setup() != 0) {
        ok(0, "the store opens");
        return done_testing();
    }
    printf("# backend \"%s\" in %s\n", t_st->backend->name, t_dir);
    test_namespace();
    test_rename_delete();
    test_uids_and_modseq();
    test_append_sizes();
    test_append_large();
    test_append_failures();
    test_concurrent_appends();
    test_quota();
    test_store();
    test_copy_move();
    test_expunge_changes();
    test_watch(argv[0]);
    is_int(t_reentrant, 0, "no callback ran inside the call that started it");
    t_teardown(1);
    return done_testing();
}

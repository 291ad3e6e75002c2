/*
 * Logins: the one way the SMTP, IMAP and POP3 modules check a user name and
 * password, so that all three answer alike and none blocks its event loop.
 *
 * The login is an address, "Alice@Example.org", normalised as the directory
 * does (fa_auth_address_normalize); it must name a user exactly: neither
 * "alice+tag@example.org" nor an alias or a catch-all logs in.  The directory
 * lookup is done in the loop (an LMDB read of microseconds); the password
 * verification (tens of milliseconds) in a thread pool of the auth module,
 * and the callback runs afterwards from the loop.
 *
 * fa_auth_login() returns
 *   FA_AGAIN    cb will be called exactly once, later, from the event loop
 *               (never from inside this call), unless the login is cancelled
 *   FA_ERROR    the directory cannot be read, or no login service runs in
 *               this process (facteurctl); logged, cb is not called
 *   FA_BUSY     the verification queue is full: answer "try again later";
 *               cb is not called
 * and cb gets rc
 *   FA_OK       user is the canonical account "local@domain", valid during
 *               the call only (copy it to keep it)
 *   FA_DECLINED unknown user, disabled user, wrong password, or a login or
 *               password that could never be valid: the caller cannot tell
 *               which, nor can the client by timing (see below); user NULL
 *   FA_ERROR    the user's stored hash is unusable (an operator's problem,
 *               logged at error level on log); user NULL
 *
 * No timing oracle: an unknown or disabled user still costs one
 * verification, against a dummy yescrypt hash made once per worker; an
 * unusable stored hash costs one too.  (A user whose stored hash is a
 * cheaper or costlier scheme than yescrypt's default still stands out.)
 *
 * Secrets: the password is copied into malloc'd memory, which the pool
 * thread wipes (explicit_bzero) and frees as soon as it has verified it;
 * the caller may wipe its own copy as soon as this returns.  {PLAIN} stored
 * values are not accepted here (FA_ERROR).
 *
 * log must stay valid until cb runs or the login is cancelled.
 * fa_auth_login_cancel() is for a session that closes while its login runs:
 * cb will never be called, and the handle is freed once the pool thread is
 * done with it.  A handle is gone once cb has run: do not cancel it then.
 */

#ifndef FA_AUTH_LOGIN_H
#define FA_AUTH_LOGIN_H

#include "fa_core.h"
#include "fa_auth_directory.h"

typedef struct fa_auth_login_s  fa_auth_login_t;

typedef void (*fa_auth_login_pt)(void *data, fa_int_t rc, const fa_str_t *user);

/* who logs in: "smtp", "imap" or "pop3", and the client's address */
typedef struct {
    const char         *protocol;
    const char         *ip;
} fa_auth_client_t;

/* handle may be NULL if the caller will never cancel */
fa_int_t fa_auth_login(const fa_auth_client_t *client, const fa_str_t *login,
    const fa_str_t *password, fa_log_t *log, fa_auth_login_pt cb, void *data,
    fa_auth_login_t **handle);
void fa_auth_login_cancel(fa_auth_login_t *h);

/*
 * A login source: another module's say on logins (the Lua engine's
 * lua_auth and login/logout hooks), one per worker, set at init_worker.
 *
 *   check   before the directory: FA_OK with *user (the account; empty:
 *           the login), FA_DECLINED (refused), FA_ERROR (temporary
 *           failure), FA_DONE (not mine: the directory decides), or
 *           FA_AGAIN: it answers later, from the loop, through
 *           fa_auth_source_done(h, rc, user), and *state is what cancel
 *           gets if the login is cancelled first.  The account must be an
 *           enabled user of the directory, like a password login's: a
 *           disabled one is refused (FA_DECLINED), a name that is not an
 *           address or no user's is the source's mistake (FA_ERROR, logged).
 *   admit   after a login succeeded, from either: FA_OK, FA_DECLINED,
 *           FA_ERROR, or FA_AGAIN and fa_auth_source_done() later.
 *   cancel  the login's session went while check or admit waited.
 *   logout  the session of a user that logged in ended (nothing to answer);
 *           the protocol modules call fa_auth_logout() once per session.
 *
 * Either function may be NULL.  The login's callback still runs exactly
 * once, from the loop, never inside fa_auth_login().
 */
typedef struct {
    fa_int_t  (*check)(fa_auth_login_t *h, const fa_auth_client_t *client,
                       const fa_str_t *login, const fa_str_t *password, fa_log_t *log,
                       fa_str_t *user, void **state);
    fa_int_t  (*admit)(fa_auth_login_t *h, const fa_auth_client_t *client,
                       const fa_str_t *user, fa_log_t *log, void **state);
    void      (*cancel)(void *state);
    void      (*logout)(const fa_auth_client_t *client, const fa_str_t *user);
} fa_auth_source_t;

void fa_auth_source_set(const fa_auth_source_t *source);
void fa_auth_source_done(fa_auth_login_t *h, fa_int_t rc, const fa_str_t *user);
void fa_auth_logout(const fa_auth_client_t *client, const fa_str_t *user);

/*
 * The worker's login service, started and stopped by the auth module's
 * init_worker and exit_worker (and by unit tests, which have no cycle).
 * Init opens the directory read-only if it exists (else at the first
 * login), starts the pool threads and makes the dummy hash.  Exit drops
 * the logins still running without calling them back, then stops the
 * threads and closes the directory.
 */
extern fa_uint_t  fa_auth_login_queue_max;    /* 1024 (tests shrink it) */

/* the worker's directory handle for lookups in the loop; NULL outside a worker */
fa_auth_dir_t *fa_auth_worker_dir(void);

fa_int_t fa_auth_login_init_worker(const char *dir_path, fa_log_t *log);
void fa_auth_login_exit_worker(void);

#endif /* FA_AUTH_LOGIN_H */

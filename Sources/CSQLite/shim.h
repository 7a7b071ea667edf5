#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro casting -1 to a function pointer; Swift cannot import it.
static inline sqlite3_destructor_type repro_sqlite_transient(void) { return SQLITE_TRANSIENT; }

// sqlite3_config is variadic and invisible to Swift.
static inline int repro_sqlite_busy_timeout(sqlite3 *db, int ms) { return sqlite3_busy_timeout(db, ms); }

// sqlite3_db_config is variadic. Without this, the last connection to close checkpoints the WAL
// and fsyncs the database: milliseconds at the end of every repro command. With it, the WAL is
// checkpointed by the automatic checkpoints that writes trigger (still durable, still crash-safe).
static inline int repro_sqlite_no_checkpoint_on_close(sqlite3 *db) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
}

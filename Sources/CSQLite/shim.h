#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro casting -1 to a function pointer; Swift cannot import it.
static inline sqlite3_destructor_type repro_sqlite_transient(void) { return SQLITE_TRANSIENT; }

// sqlite3_config is variadic and invisible to Swift.
static inline int repro_sqlite_busy_timeout(sqlite3 *db, int ms) { return sqlite3_busy_timeout(db, ms); }

// sqlite3_config is variadic, which Swift cannot call: one function a setting, for the store.
#include <sqlite3.h>

// No memory statistics: with them every allocation of every connection takes one process-wide mutex, which the
// writer and the readers on other threads then take turns at. Call before the first connection opens.
static inline int outlaw_sqlite3_memstatus_off(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

// Compiled by tests/compile_fail.cmake, once per case.
#if SETTLE_CASE == 1
// What an SQLite 3.31 header says of itself (Ubuntu 20.04's). The include
// guards of sqlite3.h's parts keep the real header out.
#define SQLITE3_H
#define _SQLITE3RTREE_H_
#define _FTS5_H
#define SQLITE_VERSION_NUMBER 3031001
#endif

#include <settle/stores/sqlite.hpp>

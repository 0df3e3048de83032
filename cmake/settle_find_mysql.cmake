# Finds the MySQL C API for settle::mysql: MariaDB Connector/C (pkg-config
# module libmariadb) or else MySQL's own client library (mysqlclient), as the
# imported target PkgConfig::SETTLE_MYSQL. Sets SETTLE_MYSQL_FOUND and
# SETTLE_MYSQL_MODULE (the pkg-config module found, libmariadb if neither).
find_package(PkgConfig QUIET)
set(SETTLE_MYSQL_FOUND FALSE)
set(SETTLE_MYSQL_MODULE libmariadb)
if(PkgConfig_FOUND AND NOT TARGET PkgConfig::SETTLE_MYSQL)
  pkg_search_module(SETTLE_MYSQL QUIET IMPORTED_TARGET libmariadb mysqlclient)
endif()
if(TARGET PkgConfig::SETTLE_MYSQL)
  set(SETTLE_MYSQL_FOUND TRUE)
  if(SETTLE_MYSQL_MODULE_NAME)
    set(SETTLE_MYSQL_MODULE ${SETTLE_MYSQL_MODULE_NAME})
  endif()
endif()

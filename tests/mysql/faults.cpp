// The fault tests of tests/faults/faults.cpp (relays killed at random, the
// server restarted under running relays, two relays sharing an outbox with
// ordering keys), on MariaDB through settle::mysql.
#define SETTLE_FAULTS_MYSQL
#include "faults/faults.cpp"  // NOLINT(bugprone-suspicious-include): one source, two backends

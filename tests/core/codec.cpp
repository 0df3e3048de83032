#include "settle_test.hpp"

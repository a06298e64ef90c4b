// The doctest entry point for build/swiattn_tests: every tests/*.cpp links into this one binary.
// It exits non-zero when any test fails and prints doctest's summary line.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

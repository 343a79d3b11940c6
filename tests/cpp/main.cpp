// Test main: one embedded Python for the whole run, its main GIL released so
// that tests can enter interpreters from any thread.
#include <gtest/gtest.h>

#include "python_env.hpp"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new interpool::testenv::PythonEnvironment);
  return RUN_ALL_TESTS();
}

// libFuzzer target: table bytes (as CSV, TSV and JSON lines) through fg::fuzz::table_file
// (tests/fuzz/fuzz_entry_points.hpp). An fg::Error is the expected answer to bad input; anything
// else escaping is a finding.
#include <cstddef>
#include <cstdint>

#include "framework/error.hpp"
#include "tests/fuzz/fuzz_entry_points.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    fg::fuzz::table_file(data, size);
  } catch (const fg::Error&) {
  }
  return 0;
}

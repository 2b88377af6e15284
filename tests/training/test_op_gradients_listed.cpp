// Every built-in op declares a gradient (each one's finite-difference checks are in
// tests/layers/test_<op>.cpp), so any graph of built-ins trains.
#include <doctest/doctest.h>

#include "framework/op.hpp"
#include "framework/registry.hpp"
#include "layers/registry.hpp"

TEST_CASE("every built-in op has a gradient with its default attributes") {
  const fg::OpRegistry ops = fg::builtin_ops();
  CHECK(ops.names().size() >= 20);
  for (const std::string& name : ops.names()) {
    CAPTURE(name);
    CHECK(ops.find(name)->create()->has_gradient());
  }
}

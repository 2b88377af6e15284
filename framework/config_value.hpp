// Reading configuration values (fg::Value, framework/graph_def.hpp) as numbers, integers,
// booleans and names, with errors at the value's file:line:column that say what was expected
// and what was found. Shared by the `training:` and `preprocessing:` parsers.
#pragma once

#include <cstdint>
#include <string>

#include "framework/error.hpp"
#include "framework/graph_def.hpp"

namespace fg {

// An fg::Error at the value's position.
Error error_at(const Value& v, const std::string& message);
// "<what> must be <want>, got <the value described>"
Error type_error(const Value& v, const std::string& what, const char* want);
// A scalar written without quotes (so `"3"` is a string, not a number).
bool is_plain_scalar(const Value& v);

double to_number(const Value& v, const std::string& what);  // finite
int64_t to_integer(const Value& v, const std::string& what);
bool to_bool(const Value& v, const std::string& what);         // true / false (any case form)
std::string to_name(const Value& v, const std::string& what);  // a non-empty scalar

}  // namespace fg

// AttrReader, InferContext and the Op defaults.
#include <fmt/format.h>

#include <charconv>
#include <cmath>

#include "framework/op.hpp"

namespace fg {

std::string Value::describe() const {
  switch (kind) {
    case Kind::null:
      return "null";
    case Kind::scalar:
      return quoted ? fmt::format("the string \"{}\"", scalar) : fmt::format("'{}'", scalar);
    case Kind::list:
      return fmt::format("a list of {} item(s)", items.size());
    case Kind::map:
      return "a mapping";
  }
  return "?";
}

const std::vector<std::string>& activation_names() {
  static const std::vector<std::string> names = {
      "linear", "relu",     "relu6",    "sigmoid", "tanh", "softmax", "log_softmax", "elu",
      "selu",   "softplus", "softsign", "swish",   "silu", "gelu",    "mish"};
  return names;
}

namespace {

bool parse_int(const Value& v, int64_t& out) {
  if (v.kind != Value::Kind::scalar || v.quoted) return false;
  const std::string& s = v.scalar;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parse_float(const Value& v, double& out) {
  if (v.kind != Value::Kind::scalar || v.quoted || v.scalar.empty()) return false;
  const std::string& s = v.scalar;
  if (s == ".inf" || s == ".nan" || s == "-.inf") return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(out);
}

}  // namespace

AttrReader::AttrReader(const NodeDef& node) : node_(node) {}

bool AttrReader::has(const std::string& key) const {
  if (std::find(used_.begin(), used_.end(), key) == used_.end()) used_.push_back(key);
  return node_.attrs.count(key) > 0;
}

const Attr* AttrReader::find(const std::string& key) {
  if (std::find(used_.begin(), used_.end(), key) == used_.end()) used_.push_back(key);
  auto it = node_.attrs.find(key);
  if (it == node_.attrs.end()) return nullptr;
  if (it->second.value.kind == Value::Kind::null) return nullptr;  // `key: null` means the default
  return &it->second;
}

const Attr& AttrReader::require(const std::string& key) {
  const Attr* a = find(key);
  if (a == nullptr) {
    Error e(fmt::format("missing required attribute '{}'", key));
    e.at(node_.loc)
        .node(node_.name, node_.op)
        .hint(fmt::format("add `{}: <value>` to the node", key));
    throw e;
  }
  return *a;
}

SourceLoc AttrReader::loc_of(const std::string& key) const {
  auto it = node_.attrs.find(key);
  if (it == node_.attrs.end()) return node_.loc;
  return it->second.value.loc.known() ? it->second.value.loc : it->second.key_loc;
}

Error AttrReader::error(const std::string& key, const std::string& message) const {
  Error e(message);
  e.at(loc_of(key)).node(node_.name, node_.op);
  return e;
}

namespace {
Error type_error(const AttrReader& r, const std::string& key, const Value& v, const char* want) {
  return r.error(key, fmt::format("attribute '{}' must be {}, got {}", key, want, v.describe()));
}
}  // namespace

int64_t AttrReader::get_int(const std::string& key) {
  const Attr& a = require(key);
  int64_t out;
  if (!parse_int(a.value, out)) throw type_error(*this, key, a.value, "an integer");
  return out;
}

int64_t AttrReader::get_int(const std::string& key, int64_t fallback) {
  return find(key) ? get_int(key) : fallback;
}

double AttrReader::get_float(const std::string& key) {
  const Attr& a = require(key);
  double out;
  if (!parse_float(a.value, out)) throw type_error(*this, key, a.value, "a number");
  return out;
}

double AttrReader::get_float(const std::string& key, double fallback) {
  return find(key) ? get_float(key) : fallback;
}

bool AttrReader::get_bool(const std::string& key, bool fallback) {
  const Attr* a = find(key);
  if (!a) return fallback;
  const Value& v = a->value;
  if (v.kind == Value::Kind::scalar && !v.quoted) {
    if (v.scalar == "true" || v.scalar == "True" || v.scalar == "TRUE") return true;
    if (v.scalar == "false" || v.scalar == "False" || v.scalar == "FALSE") return false;
  }
  throw type_error(*this, key, v, "true or false");
}

std::string AttrReader::get_string(const std::string& key) {
  const Attr& a = require(key);
  if (a.value.kind != Value::Kind::scalar) throw type_error(*this, key, a.value, "a string");
  return a.value.scalar;
}

std::string AttrReader::get_string(const std::string& key, const std::string& fallback) {
  return find(key) ? get_string(key) : fallback;
}

std::string AttrReader::get_choice(const std::string& key, const std::vector<std::string>& choices,
                                   const std::string& fallback) {
  std::string s = get_string(key, fallback);
  if (std::find(choices.begin(), choices.end(), s) != choices.end()) return s;
  Error e = error(
      key, fmt::format("attribute '{}' must be one of {}, got '{}'", key, quoted_list(choices), s));
  std::string best = closest_match(s, choices);
  if (!best.empty()) e.hint(fmt::format("did you mean '{}'?", best));
  throw e;
}

std::vector<int64_t> AttrReader::get_ints(const std::string& key, size_t count) {
  const Attr& a = require(key);
  const Value& v = a.value;
  int64_t single;
  if (parse_int(v, single)) return std::vector<int64_t>(count, single);
  if (v.kind != Value::Kind::list)
    throw type_error(*this, key, v, count == 1 ? "an integer" : "an integer or a list of integers");
  if (v.items.size() != count)
    throw error(key, fmt::format("attribute '{}' must have {} value(s), got {}", key, count,
                                 v.items.size()));
  std::vector<int64_t> out;
  for (const auto& item : v.items) {
    int64_t x;
    if (!parse_int(item, x)) throw type_error(*this, key, item, "a list of integers");
    out.push_back(x);
  }
  return out;
}

std::vector<int64_t> AttrReader::get_ints(const std::string& key, size_t count,
                                          std::vector<int64_t> fallback) {
  return find(key) ? get_ints(key, count) : fallback;
}

std::vector<int64_t> AttrReader::get_int_list(const std::string& key, bool allow_null) {
  const Attr& a = require(key);
  const Value& v = a.value;
  if (v.kind != Value::Kind::list) throw type_error(*this, key, v, "a list of integers");
  std::vector<int64_t> out;
  for (const auto& item : v.items) {
    int64_t x;
    if (allow_null && item.kind == Value::Kind::null) {
      out.push_back(kDynamic);
    } else if (parse_int(item, x)) {
      out.push_back(x);
    } else {
      throw type_error(*this, key, item, "a list of integers");
    }
  }
  return out;
}

std::vector<double> AttrReader::get_float_list(const std::string& key) {
  const Attr& a = require(key);
  const Value& v = a.value;
  if (v.kind != Value::Kind::list) throw type_error(*this, key, v, "a list of numbers");
  std::vector<double> out;
  for (const auto& item : v.items) {
    double x;
    if (!parse_float(item, x)) throw type_error(*this, key, item, "a list of numbers");
    out.push_back(x);
  }
  return out;
}

int64_t AttrReader::get_positive_int(const std::string& key) {
  int64_t v = get_int(key);
  if (v < 1)
    throw error(key, fmt::format("attribute '{}' must be a positive integer, got {}", key, v));
  return v;
}

int64_t AttrReader::get_positive_int(const std::string& key, int64_t fallback) {
  return find(key) ? get_positive_int(key) : fallback;
}

std::vector<int64_t> AttrReader::get_positive_ints(const std::string& key, size_t count) {
  auto v = get_ints(key, count);
  for (int64_t x : v)
    if (x < 1)
      throw error(key, fmt::format("attribute '{}' must hold positive integers, got {}", key, x));
  return v;
}

std::vector<int64_t> AttrReader::get_positive_ints(const std::string& key, size_t count,
                                                   std::vector<int64_t> fallback) {
  return find(key) ? get_positive_ints(key, count) : fallback;
}

std::string AttrReader::get_activation(const std::string& key, const std::string& fallback) {
  std::string s = get_string(key, fallback);
  const auto& names = activation_names();
  if (std::find(names.begin(), names.end(), s) != names.end()) return s;
  Error e = error(key, fmt::format("unknown activation '{}'", s));
  std::string best = closest_match(s, names);
  e.hint(best.empty() ? "known activations: " + quoted_list(names)
                      : fmt::format("did you mean '{}'?", best));
  throw e;
}

// ---- InferContext ----

InferContext::InferContext(const NodeDef& node, std::vector<TensorType> inputs,
                           std::vector<std::string> input_names)
    : node_(node), inputs_(std::move(inputs)), input_names_(std::move(input_names)) {}

Error InferContext::error(const std::string& message) const {
  Error e(message);
  e.at(node_.loc).node(node_.name, node_.op);
  return e;
}

Error InferContext::input_error(size_t i, const std::string& message) const {
  Error e(message);
  SourceLoc loc = i < node_.input_locs.size() ? node_.input_locs[i] : node_.loc;
  e.at(loc).node(node_.name, node_.op).input(static_cast<int>(i));
  return e;
}

Error InferContext::attr_error(const std::string& key, const std::string& message) const {
  Error e(message);
  auto it = node_.attrs.find(key);
  SourceLoc loc = it == node_.attrs.end() ? node_.loc : it->second.value.loc;
  e.at(loc).node(node_.name, node_.op);
  return e;
}

void InferContext::expect_inputs(size_t count) const {
  if (inputs_.size() != count)
    throw error(fmt::format("expects {} input(s), got {}", count, inputs_.size()))
        .hint(count == 1 ? "use `input: <name>`"
                         : fmt::format("use `inputs: [...]` with {} names", count));
}

void InferContext::expect_inputs_at_least(size_t count) const {
  if (inputs_.size() < count)
    throw error(fmt::format("expects at least {} inputs, got {}", count, inputs_.size()))
        .hint("use `inputs: [a, b, ...]`");
}

void InferContext::expect_rank(size_t i, int rank) const {
  const TensorType& t = input(i);
  if (t.rank() != rank)
    throw input_error(
        i, fmt::format("expects a rank-{} input (batch included), got '{}' with shape {} (rank {})",
                       rank, input_name(i), format_shape(t.shape), t.rank()));
}

void InferContext::expect_rank_at_least(size_t i, int rank) const {
  const TensorType& t = input(i);
  if (t.rank() < rank)
    throw input_error(
        i,
        fmt::format("expects an input of rank {} or more (batch included), got '{}' with shape {}",
                    rank, input_name(i), format_shape(t.shape)));
}

void InferContext::expect_dtype(size_t i, DType dtype) const {
  const TensorType& t = input(i);
  if (t.dtype != dtype) {
    Error e = input_error(i, fmt::format("expects a {} input, got '{}' of dtype {}",
                                         dtype_name(dtype), input_name(i), dtype_name(t.dtype)));
    if (t.dtype == DType::i32)
      e.hint("int32 tensors are token ids: pass them through an `embedding` first");
    throw e;
  }
}

std::string InferContext::describe_inputs() const {
  std::string out;
  for (size_t i = 0; i < inputs_.size(); ++i)
    out += fmt::format("\n  {}: {}", input_names_[i], format_shape(inputs_[i].shape));
  return out;
}

// ---- Op defaults ----

std::vector<WeightSpec> Op::weights(const InferContext&) const {
  return {};
}

double Op::flops_per_sample(const InferContext&, const std::vector<TensorType>&) const {
  return 0;
}

void Op::compile_training(const TrainingKernelContext&, TrainingBuild&) const {
  // The training plan checks has_gradient() first and reports the node; this is the guard for
  // a caller that did not.
  throw Error("this op has no gradient (Op::has_gradient() is false)");
}

}  // namespace fg

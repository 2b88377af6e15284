#include "engine/json_header.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <iterator>
#include <nlohmann/json.hpp>

#include "framework/error.hpp"

namespace fg {

std::string_view JsonValue::kind_name() const {
  switch (kind) {
    case Kind::null:
      return "null";
    case Kind::boolean:
      return "boolean";
    case Kind::number:
      return "number";
    case Kind::string:
      return "string";
    case Kind::array:
      return "array";
    case Kind::object:
      return "object";
  }
  return "?";
}

bool JsonValue::as_int64(int64_t& out) const {
  if (kind != Kind::number || text.empty()) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);  // no fraction or exponent
  return ec == std::errc() && ptr == end;
}

namespace {

constexpr int kMaxDepth = 64;

// A pointer into the header that records how far nlohmann's lexer has read, so that errors
// found while building the tree can name a byte. (The lexer reads no character past a string's
// closing quote or a bracket before it reports them.)
class ReadPosition {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  ReadPosition(const char* p, const char** furthest) : p_(p), furthest_(furthest) {}
  reference operator*() const { return *p_; }
  ReadPosition& operator++() {
    *furthest_ = ++p_;
    return *this;
  }
  ReadPosition operator++(int) {
    ReadPosition before = *this;
    ++*this;
    return before;
  }
  bool operator==(const ReadPosition& other) const { return p_ == other.p_; }
  bool operator!=(const ReadPosition& other) const { return p_ != other.p_; }

 private:
  const char* p_;
  const char** furthest_;
};

using Sax = nlohmann::json::json_sax_t;

// Builds a JsonValue tree from nlohmann's SAX events.
class TreeBuilder final : public Sax {
 public:
  explicit TreeBuilder(std::string_view text) : text_(text), furthest_(text.data()) {}
  const char** furthest() { return &furthest_; }
  JsonValue take() { return std::move(root_); }

  bool null() override { return add(JsonValue{}); }
  bool boolean(bool b) override {
    JsonValue v;
    v.kind = JsonValue::Kind::boolean;
    v.boolean = b;
    return add(std::move(v));
  }
  bool number_integer(number_integer_t n) override { return number(std::to_string(n)); }
  bool number_unsigned(number_unsigned_t n) override { return number(std::to_string(n)); }
  bool number_float(number_float_t, const string_t& written) override { return number(written); }
  bool string(string_t& s) override {
    JsonValue v;
    v.kind = JsonValue::Kind::string;
    v.text = std::move(s);
    return add(std::move(v));
  }
  bool binary(binary_t&) override { return add(JsonValue{}); }  // not produced by JSON text
  bool start_object(std::size_t) override { return open(JsonValue::Kind::object); }
  bool key(string_t& k) override {
    auto& members = open_.back()->members;
    for (const auto& m : members)
      if (m.first == k) fail(key_start(), fmt::format("duplicate key \"{}\"", k));
    members.emplace_back(std::move(k), JsonValue{});
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(JsonValue::Kind::array); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& ex) override;

 private:
  [[noreturn]] static void fail(size_t byte, const std::string& what) {
    throw Error(fmt::format("malformed JSON at byte {}: {}", byte, what));
  }
  size_t read() const { return static_cast<size_t>(furthest_ - text_.data()); }
  // The opening quote of the key just read (the lexer stopped after its closing quote).
  size_t key_start() const {
    size_t i = read() - 1;
    while (i > 0) {
      --i;
      size_t backslashes = 0;
      while (i >= backslashes + 1 && text_[i - backslashes - 1] == '\\') ++backslashes;
      if (text_[i] == '"' && backslashes % 2 == 0) return i;
    }
    return 0;
  }
  bool number(std::string written) {
    JsonValue v;
    v.kind = JsonValue::Kind::number;
    v.text = std::move(written);
    return add(std::move(v));
  }
  // Places a value: the root, the next item of the open array, or the open object's last key.
  JsonValue* place(JsonValue v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    JsonValue& parent = *open_.back();
    if (parent.kind == JsonValue::Kind::array) {
      parent.items.push_back(std::move(v));
      return &parent.items.back();
    }
    parent.members.back().second = std::move(v);
    return &parent.members.back().second;
  }
  bool add(JsonValue v) {
    place(std::move(v));
    return true;
  }
  bool open(JsonValue::Kind kind) {
    if (open_.size() >= kMaxDepth)
      fail(read() - 1, fmt::format("nesting deeper than {} levels", kMaxDepth));
    JsonValue v;
    v.kind = kind;
    open_.push_back(place(std::move(v)));
    return true;
  }
  bool close() {
    open_.pop_back();
    return true;
  }

  std::string_view text_;
  const char* furthest_;
  JsonValue root_;
  std::vector<JsonValue*> open_;  // the containers being filled, outermost first
};

// nlohmann's message without its "[json.exception...] parse error at line 1, column 9: "
// prefix (the byte is given instead) and without the "last read: '...'" echo of the input.
std::string reworded(const std::string& what) {
  std::string s = what;
  const size_t tag = s.find("] ");
  if (s.rfind("[json.exception", 0) == 0 && tag != std::string::npos) s = s.substr(tag + 2);
  const size_t colon = s.find(": ");
  if (s.rfind("parse error at line", 0) == 0 && colon != std::string::npos) s = s.substr(colon + 2);
  const size_t last = s.find("; last read: '");
  if (last != std::string::npos) {
    const size_t end = s.find("'", last + 14);
    s.erase(last, end == std::string::npos ? std::string::npos : end + 1 - last);
  }
  return s;
}

bool TreeBuilder::parse_error(std::size_t position, const std::string& last_token,
                              const nlohmann::detail::exception& ex) {
  const size_t byte = position > 0 ? position - 1 : 0;  // nlohmann counts from 1
  const std::string what = ex.what();
  const char found = byte < text_.size() ? text_[byte] : '\0';
  if (found == '}' || found == ']') {
    size_t before = byte;
    while (before > 0 && std::isspace(static_cast<unsigned char>(text_[before - 1]))) --before;
    if (before > 0 && text_[before - 1] == ',')
      fail(byte, found == '}' ? "trailing comma in object" : "trailing comma in array");
  }
  if (what.find("expected end of input") != std::string::npos)
    fail(byte, "unexpected text after the end of the top-level value");
  if (what.find("forbidden character after backslash") != std::string::npos && !last_token.empty())
    fail(byte, fmt::format("unknown escape '\\{}' in string", last_token.back()));
  fail(byte, reworded(what));
}

}  // namespace

JsonValue parse_json(std::string_view text) {
  TreeBuilder builder(text);
  const char* end = text.data() + text.size();
  try {
    nlohmann::json::sax_parse(ReadPosition(text.data(), builder.furthest()),
                              ReadPosition(end, builder.furthest()), &builder);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("malformed JSON: {}", reworded(e.what())));
  }
  return builder.take();
}

}  // namespace fg

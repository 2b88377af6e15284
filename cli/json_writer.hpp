// A small JSON writer for the CLI's machine-readable output: 2-space indentation, members in
// the order written, strings escaped per RFC 8259, non-finite numbers written as null.
// Containers opened with inline_ = true are written on one line (long number lists).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fg::cli {

class JsonWriter {
 public:
  JsonWriter& begin_object(bool inline_ = false) { return open('{', inline_); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array(bool inline_ = false) { return open('[', inline_); }
  JsonWriter& end_array() { return close(']'); }
  JsonWriter& key(std::string_view k) {
    separate();
    quote(k);
    out_ += ": ";
    pending_key_ = true;
    return *this;
  }
  JsonWriter& value(std::string_view s) {
    separate();
    quote(s);
    return *this;
  }
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& value(bool b) {
    separate();
    out_ += b ? "true" : "false";
    return *this;
  }
  JsonWriter& value(int64_t v) {
    separate();
    out_ += std::to_string(v);
    return *this;
  }
  JsonWriter& value(int v) { return value(static_cast<int64_t>(v)); }
  JsonWriter& value(size_t v) { return value(static_cast<int64_t>(v)); }
  JsonWriter& value(double v);  // shortest round-trip form; null if not finite
  JsonWriter& null() {
    separate();
    out_ += "null";
    return *this;
  }
  template <typename T>
  JsonWriter& member(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }
  JsonWriter& number_array(std::string_view k, const std::vector<double>& values) {
    key(k);
    begin_array(true);
    for (double v : values) value(v);
    return end_array();
  }
  // The document; ends with a newline once every container is closed.
  std::string str() const { return stack_.empty() ? out_ + "\n" : out_; }

 private:
  struct Level {
    char close;
    bool inline_;
    bool first = true;
  };
  bool inline_now() const {
    for (const auto& l : stack_)
      if (l.inline_) return true;
    return false;
  }
  void newline() {
    out_ += '\n';
    out_.append(2 * stack_.size(), ' ');
  }
  void separate() {
    if (pending_key_) {
      pending_key_ = false;
      return;
    }
    if (stack_.empty()) return;
    if (!stack_.back().first) out_ += inline_now() ? ", " : ",";
    stack_.back().first = false;
    if (!inline_now()) newline();
  }
  JsonWriter& open(char c, bool inline_) {
    separate();
    out_ += c;
    stack_.push_back({c == '{' ? '}' : ']', inline_});
    return *this;
  }
  JsonWriter& close(char c) {
    bool empty = stack_.back().first;
    bool was_inline = inline_now();
    stack_.pop_back();
    if (!empty && !was_inline) newline();
    out_ += c;
    return *this;
  }
  void quote(std::string_view s);

  std::string out_;
  std::vector<Level> stack_;
  bool pending_key_ = false;
};

}  // namespace fg::cli

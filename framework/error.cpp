#include "framework/error.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace fg {

Error::Error(std::string message) : std::runtime_error(message), message_(std::move(message)) {
  reformat();
}

Error& Error::at(const SourceLoc& loc) {
  loc_ = loc;
  reformat();
  return *this;
}

Error& Error::in_file(std::string file) {
  loc_ = SourceLoc{std::move(file), 0, 0};
  reformat();
  return *this;
}

Error& Error::node(std::string node_name, std::string op_name) {
  node_ = std::move(node_name);
  op_ = std::move(op_name);
  reformat();
  return *this;
}

Error& Error::input(int input_index) {
  input_index_ = input_index;
  reformat();
  return *this;
}

Error& Error::tensor(std::string tensor_name) {
  tensor_ = std::move(tensor_name);
  reformat();
  return *this;
}

Error& Error::hint(std::string hint_text) {
  hint_ = std::move(hint_text);
  reformat();
  return *this;
}

void Error::reformat() {
  std::string out;
  if (!loc_.file.empty()) {
    out += loc_.file;
    if (loc_.line > 0) out += fmt::format(":{}:{}", loc_.line, loc_.column);
    out += ": ";
  } else if (loc_.line > 0) {
    out += fmt::format("{}:{}: ", loc_.line, loc_.column);
  }
  out += "error: ";
  if (!node_.empty()) {
    out += op_.empty() ? fmt::format("node '{}': ", node_)
                       : fmt::format("node '{}' ({}): ", node_, op_);
  }
  if (!tensor_.empty()) out += fmt::format("tensor '{}': ", tensor_);
  out += message_;
  if (!hint_.empty()) out += "\nhint: " + hint_;
  formatted_ = std::move(out);
}

std::string Diagnostic::format() const {
  std::string out;
  if (!loc.file.empty()) {
    out += loc.file;
    if (loc.line > 0) out += fmt::format(":{}:{}", loc.line, loc.column);
    out += ": ";
  }
  out += "warning: ";
  if (!node.empty()) out += fmt::format("node '{}': ", node);
  out += message;
  return out;
}

namespace {

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      size_t cost = (std::tolower(a[i - 1]) == std::tolower(b[j - 1])) ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  // Close spellings win; a candidate that contains the word (or the reverse, "pool" ->
  // "max_pooling2d") counts as just close enough when nothing closer exists.
  const size_t threshold = std::max<size_t>(2, word.size() / 3);
  std::string best;
  size_t best_distance = threshold + 1;
  for (const auto& candidate : candidates) {
    size_t d = edit_distance(word, candidate);
    if (d > threshold && word.size() >= 3 &&
        (candidate.find(word) != std::string::npos ||
         word.find(candidate) != std::string_view::npos))
      d = threshold;
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best = closest_match(word, candidates);
  if (!best.empty()) return fmt::format("did you mean '{}'?", best);
  return "expected one of " + quoted_list(candidates);
}

std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += ", ";
    out += "'" + names[i] + "'";
  }
  return out;
}

}  // namespace fg

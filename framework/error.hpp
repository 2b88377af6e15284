// The one error type of FusionGraph: every failure the library reports is an fg::Error.
// It carries where the problem is (file, line, column), which node and op, which input,
// what is wrong and, where a fix is likely, a hint. what() is the formatted message:
//   graphs/x.yaml:12:5: error: node 'fusion' (concatenate): <message>
//   hint: <hint>
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fg {

// A position in a source file; line and column are 1-based, 0 means unknown.
struct SourceLoc {
  std::string file;
  int line = 0;
  int column = 0;

  bool known() const { return line > 0; }
};

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message);

  Error& at(const SourceLoc& loc);
  Error& in_file(std::string file);  // a file without a position (weights, tensors)
  Error& node(std::string node_name, std::string op_name);
  Error& input(int input_index);
  Error& tensor(std::string tensor_name);
  Error& hint(std::string hint_text);

  const char* what() const noexcept override { return formatted_.c_str(); }

  const SourceLoc& loc() const { return loc_; }
  const std::string& node_name() const { return node_; }
  const std::string& op_name() const { return op_; }
  int input_index() const { return input_index_; }
  const std::string& tensor_name() const { return tensor_; }
  const std::string& message() const { return message_; }
  const std::string& hint_text() const { return hint_; }

 private:
  void reformat();

  SourceLoc loc_;
  std::string node_, op_, tensor_, message_, hint_;
  int input_index_ = -1;
  std::string formatted_;
};

// A warning is a message with the same fields that does not stop compilation.
struct Diagnostic {
  SourceLoc loc;
  std::string node;
  std::string message;

  std::string format() const;
};

// The closest of `candidates` to `word` (Levenshtein), or "" if none is close enough.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

// "did you mean 'x'?" or "" when nothing is close; with the list of valid names otherwise.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

// Joins names as "'a', 'b', 'c'".
std::string quoted_list(const std::vector<std::string>& names);

}  // namespace fg

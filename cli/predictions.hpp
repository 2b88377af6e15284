// What `graph-runner run` reports about category outputs: the top classes by name on stdout,
// and the predictions CSV of --output (docs/cli.md, "run").
#pragma once

#include <fusiongraph/data.hpp>
#include <map>
#include <string>
#include <vector>

namespace fg::cli {

// "  sample 0: ankle boot (p=0.9132), sneaker (p=0.0511), sandal (p=0.0203)"
std::string format_top_classes(const RawInputs& raw, const std::string& output,
                               const Tensor& probabilities, int64_t sample, int top);

// A CSV field, quoted as RFC 4180 when it holds a comma, quote, CR or LF or begins or ends with
// a space.
std::string csv_field(const std::string& text);

// The predictions of a run as a CSV table: a header line, then one line per sample in order.
// Per output with class names: a column named as the output holding the predicted class (the
// most probable; ties: the lower index) and a column "<output>:<class>" per class with its
// probability, in class order. Per output without classes: a column "<output>:<i>" per value
// of a sample (flattened row major). Numbers are the shortest text that reads back as the same
// float32. The text is kept in memory and written at once (atomically).
class PredictionTable {
 public:
  PredictionTable(const Session& session, const RawInputs& raw);
  // Appends a batch's outputs (by output name, batch first).
  void add(const std::map<std::string, Tensor>& outputs);
  int64_t rows() const { return rows_; }
  // Writes header + rows to `path` (temporary beside it + rename).
  void write(const std::string& path) const;

 private:
  std::string header() const;
  std::vector<std::string> outputs_;
  const RawInputs& raw_;
  std::map<std::string, int64_t> values_per_sample_;  // outputs without classes
  std::string body_;
  int64_t rows_ = 0;
};

}  // namespace fg::cli

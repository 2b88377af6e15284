#include "cli/predictions.hpp"

#include <fmt/format.h>

#include <functional>
#include <numeric>

namespace fg::cli {

namespace {

int64_t values_per_sample(const Tensor& t) {
  const Dims& s = t.shape();
  return std::accumulate(s.begin() + 1, s.end(), int64_t{1}, std::multiplies<int64_t>());
}

std::string number(float v) {
  return fmt::format("{}", v);
}

}  // namespace

std::string format_top_classes(const RawInputs& raw, const std::string& output,
                               const Tensor& probabilities, int64_t sample, int top) {
  std::string line = fmt::format("  sample {}: ", sample);
  const auto classes = raw.top_classes(output, probabilities, sample, top);
  for (size_t i = 0; i < classes.size(); ++i)
    line += fmt::format("{}{} (p={:.4f})", i ? ", " : "", classes[i].name, classes[i].probability);
  return line;
}

std::string csv_field(const std::string& text) {
  const bool quote = text.find_first_of(",\"\r\n") != std::string::npos ||
                     (!text.empty() && (text.front() == ' ' || text.back() == ' '));
  if (!quote) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

PredictionTable::PredictionTable(const Session& session, const RawInputs& raw)
    : outputs_(session.output_names()), raw_(raw) {}

void PredictionTable::add(const std::map<std::string, Tensor>& outputs) {
  const int64_t batch = outputs.at(outputs_.front()).shape().at(0);
  std::vector<std::string> lines(static_cast<size_t>(batch));
  for (const auto& name : outputs_) {
    const Tensor& t = outputs.at(name);
    const std::vector<std::string>& classes = raw_.class_names(name);
    if (!classes.empty()) {
      for (int64_t b = 0; b < batch; ++b) {
        const auto all = raw_.top_classes(name, t, b, static_cast<int>(classes.size()));
        std::string& line = lines[b];
        line += (line.empty() ? "" : ",") + csv_field(all.front().name);
        const float* row = t.data<float>() + b * static_cast<int64_t>(classes.size());
        for (size_t c = 0; c < classes.size(); ++c) line += "," + number(row[c]);
      }
      continue;
    }
    const int64_t n = values_per_sample(t);
    auto [it, first] = values_per_sample_.emplace(name, n);
    if (!first && it->second != n)
      throw Error(
          fmt::format("output '{}' has {} values per sample in rows from {} on but {} "
                      "before; a predictions table needs the same count in every row",
                      name, n, rows_ + 1, it->second));
    const std::vector<float> values = to_floats(t);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < n; ++i)
        lines[b] += (lines[b].empty() ? "" : ",") + number(values[b * n + i]);
  }
  for (const auto& line : lines) body_ += line + "\n";
  rows_ += batch;
}

std::string PredictionTable::header() const {
  std::string h;
  auto add = [&](const std::string& column) { h += (h.empty() ? "" : ",") + csv_field(column); };
  for (const auto& name : outputs_) {
    const std::vector<std::string>& classes = raw_.class_names(name);
    if (!classes.empty()) {
      add(name);
      for (const auto& c : classes) add(name + ":" + c);
      continue;
    }
    auto it = values_per_sample_.find(name);
    for (int64_t i = 0; i < (it == values_per_sample_.end() ? 0 : it->second); ++i)
      add(fmt::format("{}:{}", name, i));
  }
  return h + "\n";
}

void PredictionTable::write(const std::string& path) const {
  const std::string h = header();
  write_file_atomic(path, {h, body_});
}

}  // namespace fg::cli

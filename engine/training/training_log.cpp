#include "engine/training/training_log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "engine/file_io.hpp"
#include "framework/error.hpp"

namespace fg {

std::string python_float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  // fmt's shortest round-trip form switches to an exponent where repr does (below 1e-4, from
  // 1e16); repr adds ".0" to integral values.
  std::string s = fmt::format("{}", value);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

namespace {

// A field as Python's csv module (excel dialect) writes it: quoted when it holds the
// separator, a quote or a line break, with quotes doubled.
std::string csv_field(const std::string& s, char separator) {
  if (s.find_first_of(std::string("\"\r\n") + separator) == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Splits one line of such a file (quotes honoured).
std::vector<std::string> csv_split(const std::string& line, char separator) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      fields.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == separator && !quoted) {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// CsvLogger

CsvLogger::CsvLogger(std::string path, bool append, char separator)
    : path_(std::move(path)), append_(append), separator_(separator) {
  check_file_destination(path_, "the CSV log");
}

std::string CsvLogger::header_line() const {
  std::string line = csv_field("epoch", separator_);
  for (const auto& k : *keys_) line += separator_ + csv_field(k, separator_);
  return line;
}

void CsvLogger::write(const std::string& text) {
  out_ << text;
  out_.flush();
  if (!out_) throw Error("cannot write the CSV log (disk full?)").in_file(path_);
}

void CsvLogger::open_stream(bool append) {
  if (out_.is_open()) out_.close();
  out_.clear();
  out_.open(path_, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
  if (!out_) throw Error("cannot open the CSV log for writing").in_file(path_);
}

void CsvLogger::on_train_begin(const std::vector<std::string>& names) {
  keys_.reset();
  if (!names.empty()) {
    keys_ = names;
    std::sort(keys_->begin(), keys_->end());  // Python's sorted(): code point order
  }
  existing_header_.clear();
  resumed_ = false;
  if (append_) {
    const std::vector<std::string> lines = read_lines(path_);
    if (!lines.empty()) existing_header_ = lines.front();
    if (!existing_header_.empty() && keys_ && existing_header_ != header_line()) {
      throw Error(fmt::format("cannot append: the file's header is '{}', but this training logs "
                              "'{}'",
                              existing_header_, header_line()))
          .in_file(path_)
          .hint("log to a new file, or remove this one");
    }
  }
  header_written_ = !existing_header_.empty();
  open_stream(append_);
}

void CsvLogger::drop_rows_from(int64_t epoch) {
  std::vector<std::string> lines = read_lines(path_);
  if (lines.size() < 2) return;
  std::string kept = lines.front() + "\r\n";
  bool dropped = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string first = csv_split(lines[i], separator_).front();
    char* end = nullptr;
    const long long e = std::strtoll(first.c_str(), &end, 10);
    if (end != first.c_str() && e >= epoch) {
      dropped = true;
      continue;
    }
    kept += lines[i] + "\r\n";
  }
  if (!dropped) return;
  out_.close();
  write_file_atomic(path_, {kept});
  open_stream(true);
}

void CsvLogger::on_epoch_begin(int64_t epoch, int64_t, int64_t) {
  if (!out_.is_open()) on_train_begin({});
  if (append_ && !resumed_ && header_written_) drop_rows_from(epoch);
  resumed_ = true;
}

void CsvLogger::on_epoch_end(const EpochResult& epoch) {
  if (!out_.is_open()) on_train_begin({});
  if (!keys_) {
    keys_.emplace();
    for (const auto& [name, value] : epoch.logs) keys_->push_back(name);
    std::sort(keys_->begin(), keys_->end());
    if (!existing_header_.empty() && existing_header_ != header_line()) {
      throw Error(fmt::format("cannot append: the file's header is '{}', but this training logs "
                              "'{}'",
                              existing_header_, header_line()))
          .in_file(path_);
    }
  }
  std::string text;
  if (!header_written_) text += header_line() + "\r\n";
  header_written_ = true;
  text += fmt::format("{}", epoch.epoch);
  for (const auto& key : *keys_) {
    auto it = std::find_if(epoch.logs.begin(), epoch.logs.end(),
                           [&](const auto& entry) { return entry.first == key; });
    text += separator_;
    text += it == epoch.logs.end() ? std::string("NA") : python_float_repr(it->second);
  }
  write(text + "\r\n");
}

void CsvLogger::on_train_end(const FitResult&) {
  if (out_.is_open()) out_.close();
}

std::vector<EpochResult> read_csv_log(const std::string& path, char separator) {
  const std::vector<std::string> lines = read_lines(path);
  std::vector<EpochResult> out;
  if (lines.empty()) return out;
  const std::vector<std::string> header = csv_split(lines.front(), separator);
  if (header.empty() || header.front() != "epoch")
    throw Error("not a training log: the header does not start with 'epoch'").in_file(path);
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const std::vector<std::string> fields = csv_split(lines[i], separator);
    EpochResult r;
    char* end = nullptr;
    r.epoch = std::strtoll(fields.front().c_str(), &end, 10);
    if (end == fields.front().c_str() || *end != '\0')
      throw Error(fmt::format("line {}: '{}' is not an epoch number", i + 1, fields.front()))
          .in_file(path);
    for (size_t f = 1; f < fields.size() && f < header.size(); ++f) {
      const double v = std::strtod(fields[f].c_str(), &end);
      if (fields[f] == "NA" || end == fields[f].c_str() || *end != '\0') continue;
      r.logs.emplace_back(header[f], v);
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string learning_curves_path(const std::string& csv_path) {
  const std::string ext = ".csv";
  if (csv_path.size() > ext.size() &&
      csv_path.compare(csv_path.size() - ext.size(), ext.size(), ext) == 0)
    return csv_path.substr(0, csv_path.size() - ext.size()) + ".svg";
  return csv_path + ".svg";
}

// ---------------------------------------------------------------------------------------------
// LearningCurves

LearningCurves::LearningCurves(std::string path, std::vector<EpochResult> earlier)
    : path_(std::move(path)), history_(std::move(earlier)) {
  check_file_destination(path_, "the learning curves");
}

void LearningCurves::on_epoch_begin(int64_t epoch, int64_t, int64_t) {
  history_.erase(std::remove_if(history_.begin(), history_.end(),
                                [&](const EpochResult& r) { return r.epoch >= epoch; }),
                 history_.end());
}

void LearningCurves::on_epoch_end(const EpochResult& epoch) {
  history_.push_back(epoch);
  write_file_atomic(path_, {learning_curves_svg(history_)});
}

// ---------------------------------------------------------------------------------------------
// The SVG

namespace {

constexpr double kPanelWidth = 380, kPanelHeight = 250;
constexpr double kLeft = 62, kRight = 14, kTop = 30, kBottom = 42;  // plot margins in a panel
constexpr const char* kTrainingColour = "#1f77b4";
constexpr const char* kValidationColour = "#ff7f0e";

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// 1, 2 or 5 times a power of ten, near span / target_ticks.
double nice_step(double span, int target_ticks) {
  const double raw = span / target_ticks;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * power >= raw) return m * power;
  return 10 * power;
}

struct Axis {
  double lo = 0, hi = 1, step = 1;
};

Axis value_axis(double lo, double hi) {
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
    const double pad = std::max(std::abs(lo) * 0.05, 1e-3);
    lo -= pad;
    hi += pad;
  }
  Axis a;
  a.step = nice_step(hi - lo, 5);
  a.lo = std::floor(lo / a.step) * a.step;
  a.hi = std::ceil(hi / a.step) * a.step;
  return a;
}

Axis epoch_axis(int64_t first, int64_t last) {
  Axis a;
  a.lo = static_cast<double>(first);
  a.hi = static_cast<double>(std::max(last, first + 1));
  a.step = std::max(1.0, nice_step(a.hi - a.lo, 8));
  a.step = std::ceil(a.step);
  return a;
}

struct Series {
  std::vector<std::pair<double, double>> points;  // (epoch from 1, value), finite values only
};

// The quantities in log order: "loss", "accuracy", ... ("val_x" belongs to "x").
std::vector<std::string> quantities(const std::vector<EpochResult>& history) {
  std::vector<std::string> names;
  for (const auto& r : history) {
    for (const auto& [name, value] : r.logs) {
      const std::string base = name.rfind("val_", 0) == 0 ? name.substr(4) : name;
      if (std::find(names.begin(), names.end(), base) == names.end()) names.push_back(base);
    }
  }
  return names;
}

Series series_of(const std::vector<EpochResult>& history, const std::string& name) {
  Series s;
  for (const auto& r : history)
    for (const auto& [n, v] : r.logs)
      if (n == name && std::isfinite(v)) s.points.emplace_back(static_cast<double>(r.epoch + 1), v);
  return s;
}

// One panel's frame: axes, ticks, labels and title, translated to its place.
std::string panel_frame(const std::string& title, const Axis& x, const Axis& y) {
  const double w = kPanelWidth - kLeft - kRight, h = kPanelHeight - kTop - kBottom;
  std::string out = fmt::format(
      "<text class=\"title\" x=\"{:.1f}\" y=\"18\" text-anchor=\"middle\">{}</text>\n"
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#bbb\"/>\n",
      kLeft + w / 2, xml_escape(title), kLeft, kTop, w, h);
  for (double v = y.lo; v <= y.hi + y.step * 1e-6; v += y.step) {
    const double py = kTop + h - (v - y.lo) / (y.hi - y.lo) * h;
    out += fmt::format(
        "<line class=\"grid\" x1=\"{}\" y1=\"{:.2f}\" x2=\"{}\" y2=\"{:.2f}\" stroke=\"#eee\"/>"
        "<line x1=\"{}\" y1=\"{:.2f}\" x2=\"{}\" y2=\"{:.2f}\" stroke=\"#333\"/>"
        "<text x=\"{}\" y=\"{:.2f}\" text-anchor=\"end\">{:.6g}</text>\n",
        kLeft, py, kLeft + w, py, kLeft - 4, py, kLeft, py, kLeft - 6, py + 4,
        std::abs(v) < y.step * 1e-9 ? 0.0 : v);
  }
  for (double v = x.lo; v <= x.hi + 1e-9; v += x.step) {
    const double px = kLeft + (v - x.lo) / (x.hi - x.lo) * w;
    out += fmt::format(
        "<line x1=\"{:.2f}\" y1=\"{}\" x2=\"{:.2f}\" y2=\"{}\" stroke=\"#333\"/>"
        "<text x=\"{:.2f}\" y=\"{}\" text-anchor=\"middle\">{:.0f}</text>\n",
        px, kTop + h, px, kTop + h + 4, px, kTop + h + 16, v);
  }
  out += fmt::format(
      "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#333\"/>"
      "<line x1=\"{0}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\" stroke=\"#333\"/>\n"
      "<text x=\"{4:.1f}\" y=\"{5}\" text-anchor=\"middle\">epoch</text>\n",
      kLeft, kTop, kTop + h, kLeft + w, kLeft + w / 2, kPanelHeight - 8);
  return out;
}

std::string series_svg(const Series& s, const Axis& x, const Axis& y, bool validation) {
  if (s.points.empty()) return "";
  const double w = kPanelWidth - kLeft - kRight, h = kPanelHeight - kTop - kBottom;
  const char* colour = validation ? kValidationColour : kTrainingColour;
  std::string points;
  double px = 0, py = 0;
  for (const auto& [e, v] : s.points) {
    px = kLeft + (e - x.lo) / (x.hi - x.lo) * w;
    py = kTop + h - (v - y.lo) / (y.hi - y.lo) * h;
    points += fmt::format("{}{:.2f},{:.2f}", points.empty() ? "" : " ", px, py);
  }
  std::string out = fmt::format(
      "<polyline class=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"/>\n",
      validation ? "validation" : "training", colour, validation ? " stroke-dasharray=\"6 4\"" : "",
      points);
  if (s.points.size() == 1)  // a lone point draws no line
    out +=
        fmt::format("<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"3\" fill=\"{}\"/>\n", px, py, colour);
  return out;
}

std::string legend_svg(bool training, bool validation) {
  const double x = kPanelWidth - kRight - 92;
  std::string out;
  double y = kTop + 12;
  for (int v = 0; v < 2; ++v) {
    if (!(v ? validation : training)) continue;
    out += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
        "stroke-width=\"2\"{}/><text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
        x, y, x + 22, y, v ? kValidationColour : kTrainingColour,
        v ? " stroke-dasharray=\"6 4\"" : "", x + 28, y + 4, v ? "validation" : "training");
    y += 16;
  }
  return "<g class=\"legend\">\n" + out + "</g>\n";
}

std::string panel_svg(const std::vector<EpochResult>& history, const std::string& name,
                      int64_t first_epoch, int64_t last_epoch) {
  const Series training = series_of(history, name);
  const Series validation = series_of(history, "val_" + name);
  double lo = INFINITY, hi = -INFINITY;
  for (const Series* s : {&training, &validation})
    for (const auto& p : s->points) lo = std::min(lo, p.second), hi = std::max(hi, p.second);
  if (lo > hi) lo = 0, hi = 1;  // nothing finite to draw
  const Axis x = epoch_axis(first_epoch, last_epoch);
  const Axis y = value_axis(lo, hi);
  return panel_frame(name, x, y) + series_svg(training, x, y, false) +
         series_svg(validation, x, y, true) +
         legend_svg(!training.points.empty(), !validation.points.empty());
}

}  // namespace

std::string learning_curves_svg(const std::vector<EpochResult>& history) {
  const std::vector<std::string> names = quantities(history);
  const size_t panels = std::max<size_t>(1, names.size());
  const size_t columns = std::min<size_t>(panels, 3);
  const size_t rows = (panels + columns - 1) / columns;
  const double width = columns * kPanelWidth, height = rows * kPanelHeight;
  std::string out = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"11\">\n"
      "<title>Learning curves</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<style>.title {{ font-size: 13px; font-weight: bold; }}</style>\n",
      width, height);
  if (names.empty()) out += "<text x=\"20\" y=\"40\">no epochs logged yet</text>\n";
  int64_t first = 1, last = 1;
  if (!history.empty()) {
    first = last = history.front().epoch + 1;
    for (const auto& r : history)
      first = std::min(first, r.epoch + 1), last = std::max(last, r.epoch + 1);
  }
  for (size_t i = 0; i < names.size(); ++i) {
    out += fmt::format("<g class=\"panel\" transform=\"translate({},{})\">\n",
                       (i % columns) * kPanelWidth, (i / columns) * kPanelHeight);
    out += panel_svg(history, names[i], first, last) + "</g>\n";
  }
  return out + "</svg>\n";
}

}  // namespace fg

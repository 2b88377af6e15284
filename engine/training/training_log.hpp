// Training logs written as training goes: Keras's CSVLogger and an SVG of the learning curves
// (graph-runner train --log FILE.csv writes both; docs/training.md "Logs and learning curves").
#pragma once

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "fusiongraph/training.hpp"

namespace fg {

// keras.callbacks.CSVLogger: a header `epoch,<log names sorted as Python sorts strings>`, then
// one row per epoch (epoch from 0, values as Python's repr, "NA" for a value an epoch does not
// log), lines ended by "\r\n" as Python's csv module writes them, flushed after every epoch.
// Without `append` the file is truncated when training begins. With `append` (Keras's
// append=True, for resume) rows are added after the existing ones, the header only if the file
// is empty; the existing header must match (fg::Error otherwise, before the first epoch), and
// rows of epochs at or after the one that resumes are dropped first (a run killed after logging
// an epoch but before checkpointing it would otherwise log that epoch twice).
class CsvLogger : public TrainingCallback {
 public:
  explicit CsvLogger(std::string path, bool append = false, char separator = ',');

  void on_train_begin(const std::vector<std::string>& names) override;
  void on_epoch_begin(int64_t epoch, int64_t epochs, int64_t steps) override;
  void on_epoch_end(const EpochResult& epoch) override;
  void on_train_end(const FitResult& result) override;

  const std::string& path() const { return path_; }

 private:
  void open_stream(bool append);
  void drop_rows_from(int64_t epoch);
  std::string header_line() const;
  void write(const std::string& text);

  std::string path_;
  bool append_;
  char separator_;
  std::ofstream out_;
  std::optional<std::vector<std::string>> keys_;
  std::string existing_header_;  // the first line of an appended file, without its ending
  bool header_written_ = false;
  bool resumed_ = false;  // drop_rows_from has run
};

// Reads a file written by CsvLogger (or Keras's CSVLogger) back into per-epoch logs (epoch and
// logs only; "NA" values are left out), e.g. to seed LearningCurves when training resumes.
std::vector<EpochResult> read_csv_log(const std::string& path, char separator = ',');

// The curves' file beside a CSV log: "run/log.csv" -> "run/log.svg" (else `path` + ".svg").
std::string learning_curves_path(const std::string& csv_path);

// The learning curves as an SVG document: one panel per logged quantity (loss, then each metric,
// in log order), epochs on x (1 = the first, as the progress bar counts), the training value as
// a solid line and the validation value ("val_<name>") dashed, with axes, ticks and a legend.
// Non-finite values are left out. No external libraries; any browser opens it.
std::string learning_curves_svg(const std::vector<EpochResult>& history);

// Rewrites the SVG atomically after every epoch. `earlier`: epochs logged before a resume; on
// the first epoch, those at or after it are dropped.
class LearningCurves : public TrainingCallback {
 public:
  explicit LearningCurves(std::string path, std::vector<EpochResult> earlier = {});

  void on_epoch_begin(int64_t epoch, int64_t epochs, int64_t steps) override;
  void on_epoch_end(const EpochResult& epoch) override;

  const std::vector<EpochResult>& history() const { return history_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<EpochResult> history_;
};

// Python's repr() of a float, as Keras's CSV rows hold it: the shortest text that reads back to
// the same double, with ".0" for integral values ("1.0", "0.25", "1e-05", "nan", "inf").
std::string python_float_repr(double value);

}  // namespace fg

// A data set from a table (docs/data.md, "Tables" and "Pipeline"): one row per sample, a column
// per graph input (a file path relative to the table's folder, or the text itself; a .npy file
// of the per-sample shape for an input without preprocessing) and per trained output (a class
// name or id through the output's category preprocessing, or numbers: one, a JSON array in JSON
// lines, or space-separated in CSV / TSV).
//
// Every row is checked when the table is opened (a missing column or cell, a file that does not
// exist, a label outside the class list, text that is not UTF-8, targets that do not fit the
// output); decoding happens in DataSource::read, on the caller's (the prefetcher's) threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/training/dataset.hpp"
#include "framework/training_config.hpp"

namespace fg {

class CompiledGraph;
class Preprocessors;

struct TableSourceOptions {
  bool targets = true;  // false: only the graph inputs are read (prediction)
  // Bad rows are skipped (and listed by DataSource::skipped) instead of being an error. Every
  // row is then decoded once at open, on `workers` threads, to find the ones that fail.
  bool skip_bad_rows = false;
  int workers = 1;
  // With skip_bad_rows: decode every row at open (false: the caller does, as the cache build).
  bool decode_check = true;
};

// True for the extensions Table::read takes (.csv, .tsv, .jsonl, .ndjson).
bool is_table_path(const std::string& path);

// Opens `path` against the graph. `preprocessors` must already be adapted (needs_adapt()
// false). Throws fg::Error naming the table, row (and file line), column and file.
Dataset open_table_dataset(const std::string& path, const CompiledGraph& graph,
                           const std::vector<OutputTraining>& outputs,
                           std::shared_ptr<const Preprocessors> preprocessors,
                           const TableSourceOptions& options = {});

// "not valid UTF-8 at byte N" for the first bad sequence of `text`, or "" when it is valid
// (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
std::string utf8_problem(const std::string& text);

}  // namespace fg

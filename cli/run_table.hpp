// graph-runner run --data TABLE --output predictions.csv: batch prediction over a table.
#pragma once

#include <fusiongraph/data.hpp>
#include <string>

namespace fg::cli {

struct RunTableOptions {
  std::string table;   // .csv / .tsv / .jsonl, a column per graph input
  std::string output;  // the predictions CSV (cli/predictions.hpp)
  int64_t batch = 0;   // rows per run (0: 32)
  int workers = 0;     // decoding threads (0: all cores)
};

// Reads the table, preprocesses it batch by batch (the next batch on worker threads while the
// model runs the current one), writes the predictions atomically, and draws a progress bar on
// stderr when it is a terminal. Every graph input must declare preprocessing.
int run_table(const Session& session, const RawInputs& raw, const RunTableOptions& options);

}  // namespace fg::cli

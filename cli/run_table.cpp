#include "cli/run_table.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <iostream>
#include <thread>

#include "cli/predictions.hpp"
#include "fusiongraph/training.hpp"

namespace fg::cli {

namespace {

using Clock = std::chrono::steady_clock;

void check_every_input_raw(const Session& session, const RawInputs& raw, const Table& table) {
  for (const auto& name : session.input_names())
    if (!raw.takes_raw(name))
      throw Error(fmt::format("input '{}' declares no preprocessing, so it cannot be read from a "
                              "table column; run --data needs a `preprocessing:` on every input",
                              name))
          .in_file(table.path());
  if (table.rows() == 0) throw Error("the table has no rows").in_file(table.path());
}

int resolve_workers(int workers) {
  if (workers > 0) return workers;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

// "\r 3/40 [==>....] - ETA: 12s" on a terminal.
void draw_progress(int64_t step, int64_t steps, double elapsed) {
  const double eta = step ? elapsed / step * (steps - step) : 0;
  std::cerr << "\r" << progress_bar_text(step, steps)
            << (step < steps ? " - ETA: " + format_eta(eta) : " - " + format_eta(elapsed))
            << std::flush;
}

}  // namespace

int run_table(const Session& session, const RawInputs& raw, const RunTableOptions& o) {
  const Table table = Table::read(o.table);
  check_every_input_raw(session, raw, table);
  const int64_t batch = o.batch > 0 ? o.batch : 32;
  const int workers = resolve_workers(o.workers);
  const int64_t rows = table.rows(), steps = (rows + batch - 1) / batch;
  const bool terminal = ProgressBar::is_terminal(STDERR_FILENO) && steps > 1;
  std::cout << fmt::format("data: {} ({} rows), batches of {}, {} worker{}\n", o.table, rows, batch,
                           workers, workers == 1 ? "" : "s");
  auto prepare = [&](int64_t step) {
    return std::async(std::launch::async, [&raw, &table, step, batch, rows, workers] {
      return raw.batch(table, step * batch, std::min(rows, (step + 1) * batch), workers);
    });
  };
  PredictionTable predictions(session, raw);
  const auto start = Clock::now();
  std::future<std::map<std::string, Tensor>> next = prepare(0);
  for (int64_t step = 0; step < steps; ++step) {
    const std::map<std::string, Tensor> inputs = next.get();
    if (step + 1 < steps) next = prepare(step + 1);  // decodes while the model runs
    predictions.add(session.run(inputs));
    if (terminal)
      draw_progress(step + 1, steps, std::chrono::duration<double>(Clock::now() - start).count());
  }
  if (terminal) std::cerr << "\n";
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  predictions.write(o.output);
  std::cout << fmt::format("wrote {} predictions to {} ({:.2f} s, {:.0f} samples/s)\n", rows,
                           o.output, seconds, rows / std::max(seconds, 1e-9));
  return 0;
}

}  // namespace fg::cli

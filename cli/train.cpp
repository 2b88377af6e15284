// graph-runner train and evaluate: clients of fg::Trainer (include/fusiongraph/training.hpp).
#include <fmt/format.h>
#include <unistd.h>

#include <fusiongraph/training.hpp>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/json_text.hpp"

namespace fg::cli {
namespace {

struct TrainCommandOptions {
  std::string graph, data, validation_data, weights, save, log, resume;
  uint64_t seed = 0;
  bool seed_given = false;
  int64_t epochs = 0, batch_size = 0;
  double learning_rate = 0;
  bool no_shuffle = false;
  int threads = 0;
  DataPipelineOptions pipeline;
};

struct EvaluateCommandOptions {
  std::string graph, data, weights;
  int64_t batch_size = 0;
  int threads = 0;
  bool json = false;
  std::string precision;
  DataPipelineOptions pipeline;
};

void apply(const DataPipelineOptions& p, TrainerOptions& options) {
  options.workers = p.workers;
  options.cache_dir = p.cache;
  options.skip_bad_rows = p.skip_bad_rows;
}

// --skip-bad-rows never skips silently: how many and which, on stderr.
void report_skipped(const std::vector<std::string>& skipped) {
  if (skipped.empty()) return;
  std::cerr << fmt::format("skipped {} bad row{} (--skip-bad-rows):\n", skipped.size(),
                           skipped.size() == 1 ? "" : "s");
  for (const auto& s : skipped) std::cerr << "  " << s << "\n";
}

// FILE.csv -> FILE.svg (the learning curves beside the CSV log).
std::string curves_path(const std::string& csv) {
  const auto dot = csv.find_last_of('.');
  const auto slash = csv.find_last_of('/');
  const bool has_ext = dot != std::string::npos && (slash == std::string::npos || dot > slash);
  return (has_ext ? csv.substr(0, dot) : csv) + ".svg";
}

int cmd_train(const TrainCommandOptions& o) {
  check_file_destination(o.save, "--save");
  if (!o.log.empty()) {
    check_file_destination(o.log, "--log");
    check_file_destination(curves_path(o.log), "--log (its learning curves)");
  }
  if (!o.weights.empty() && !o.resume.empty())
    throw UsageError("give --weights or --resume, not both (a checkpoint holds the weights)");
  TrainerOptions options;
  options.threads = o.threads;
  options.weights_file = o.weights;
  apply(o.pipeline, options);
  if (o.seed_given) options.init_seed = o.seed;
  if (o.epochs > 0) options.overrides.epochs = o.epochs;
  if (o.batch_size > 0) options.overrides.batch_size = o.batch_size;
  if (o.learning_rate > 0) options.overrides.learning_rate = o.learning_rate;
  if (o.no_shuffle) options.overrides.shuffle = false;
  Trainer trainer(o.graph, options);
  if (!o.resume.empty()) trainer.resume(o.resume);
  if (trainer.initial_epoch() >= trainer.config().epochs) {
    std::cout << fmt::format("nothing to do: {} epochs are done and --epochs asks for {}\n",
                             trainer.initial_epoch(), trainer.config().epochs);
    return 0;
  }
  ProgressBar bar(std::cout, ProgressBar::is_terminal(STDOUT_FILENO));
  FitOptions fit;
  fit.validation_data = o.validation_data;
  fit.save_path = o.save;
  fit.callbacks.push_back(&bar);
  std::unique_ptr<CsvLogger> csv;
  std::unique_ptr<LearningCurves> curves;
  if (!o.log.empty()) {
    csv = std::make_unique<CsvLogger>(o.log, /*append=*/!o.resume.empty());
    curves = std::make_unique<LearningCurves>(curves_path(o.log), trainer.history());
    fit.callbacks.push_back(csv.get());
    fit.callbacks.push_back(curves.get());
  }
  const FitResult result = trainer.fit(o.data, fit);
  report_skipped(result.skipped_rows);
  if (result.stopped_early)
    std::cout << fmt::format("early stopping after epoch {}\n", result.history.back().epoch + 1);
  std::cout << fmt::format(
      "saved {}{}\n", o.save,
      o.log.empty() ? "" : fmt::format(" (log {}, curves {})", o.log, curves_path(o.log)));
  return 0;
}

int cmd_evaluate(const EvaluateCommandOptions& o) {
  TrainerOptions options;
  options.threads = o.threads;
  options.weights_file = o.weights;
  options.evaluate_precision = parse_precision_option(o.precision);
  apply(o.pipeline, options);
  if (o.batch_size > 0) options.overrides.batch_size = o.batch_size;
  if (const std::string w = precision_warning(options.evaluate_precision.value_or(Precision::f32));
      !w.empty())
    std::cerr << "warning: " << w << "\n";
  Trainer trainer(o.graph, options);
  const EvaluateResult r = trainer.evaluate(o.data);
  report_skipped(r.skipped_rows);
  if (o.json) {
    nlohmann::ordered_json j;
    j["samples"] = r.samples;
    for (const auto& [k, v] : r.logs) j[k] = v;
    std::cout << json_text(j);
  } else {
    std::cout << fmt::format("{} samples{}\n", r.samples, format_log_values(r.logs));
  }
  return 0;
}

}  // namespace

Command add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainCommandOptions>();
  auto* c = app.add_subcommand("train",
                               "Train the graph with its `training:` section on a table (.csv, "
                               ".tsv, .jsonl: a row per sample) or a data folder (one .npy per "
                               "input and per trained output)");
  c->add_option("graph", o->graph, "Graph YAML file")->required()->check(CLI::ExistingFile);
  c->add_option("--data", o->data, "Training data: a table (.csv, .tsv, .jsonl) or a folder")
      ->required()
      ->check(CLI::ExistingPath);
  c->add_option("--validation-data", o->validation_data,
                "Validation data, a table or a folder (else the section's validation_split)")
      ->check(CLI::ExistingPath);
  c->add_option("--weights", o->weights, "Initial weights (.safetensors)")
      ->check(CLI::ExistingFile);
  c->add_option("--seed", o->seed, "Seed of the initial weights (default: training.seed, else 0)")
      ->check(unsigned_64())
      ->each([o](const std::string&) { o->seed_given = true; });
  c->add_option("--save", o->save,
                "Trained weights + checkpoint (.safetensors), written atomically after every epoch")
      ->required();
  c->add_option("--epochs", o->epochs, "Total epochs to reach (overrides training.epochs)")
      ->check(integer_in(1, 1000000000));
  c->add_option("--batch-size", o->batch_size, "Batch size (overrides training.batch_size)")
      ->check(integer_in(1, 1 << 30));
  c->add_option("--learning-rate", o->learning_rate,
                "A constant learning rate (overrides the "
                "optimizer's)")
      ->check(finite_in(1e-30, 1e30));
  c->add_flag("--no-shuffle", o->no_shuffle, "Keep the samples in file order every epoch");
  c->add_option("--log", o->log,
                "CSV log per epoch (Keras CSVLogger); learning curves beside it "
                "as .svg");
  c->add_option("--resume", o->resume, "Continue from a checkpoint written by --save")
      ->check(CLI::ExistingFile);
  add_threads_option(c, o->threads);
  add_data_pipeline_options(c, o->pipeline);
  return {c, [o] { return cmd_train(*o); }};
}

Command add_evaluate_command(CLI::App& app) {
  auto o = std::make_shared<EvaluateCommandOptions>();
  auto* c = app.add_subcommand("evaluate",
                               "Loss and metrics of trained weights on a table or a data folder");
  c->add_option("graph", o->graph, "Graph YAML file")->required()->check(CLI::ExistingFile);
  c->add_option("--weights", o->weights, "Weights or checkpoint (.safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  c->add_option("--data", o->data, "Data: a table (.csv, .tsv, .jsonl) or a folder")
      ->required()
      ->check(CLI::ExistingPath);
  c->add_option("--batch-size", o->batch_size, "Batch size (overrides training.batch_size)")
      ->check(integer_in(1, 1 << 30));
  c->add_flag("--json", o->json, "Print JSON");
  add_threads_option(c, o->threads);
  add_precision_option(c, o->precision);
  add_data_pipeline_options(c, o->pipeline);
  return {c, [o] { return cmd_evaluate(*o); }};
}

}  // namespace fg::cli

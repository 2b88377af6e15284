// graph-runner train and evaluate: clients of fg::Trainer (include/fusiongraph/training.hpp).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
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
  std::string against;  // "": no comparison
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

// Accuracy-like metrics (fractions) differ in points; other values (losses, errors) as they are.
bool is_fraction_metric(const std::string& name) {
  return name.find("accuracy") != std::string::npos || name == "acc" ||
         (name.size() > 4 && name.compare(name.size() - 4, 4, "_acc") == 0);
}

std::string format_difference(const std::string& name, double difference) {
  return is_fraction_metric(name) ? fmt::format("{:+.2f} points", 100 * difference)
                                  : fmt::format("{:+.4g}", difference);
}

// evaluate --against, as text: the logs of both plans side by side with their difference, then
// per graph output the top-1 agreement and the relative errors.
void print_comparison(const EvaluateResult& r, Precision precision) {
  const PrecisionComparison& c = *r.against;
  const std::string p = precision_name(precision), q = precision_name(c.precision);
  std::cout << fmt::format("{} against {}:\n", p, q);
  size_t width = 6;
  for (const auto& [name, value] : r.logs) width = std::max(width, name.size());
  for (const auto& o : c.outputs) width = std::max(width, o.output.size());
  std::cout << fmt::format("  {:<{}}  {:>10}  {:>10}  {}\n", "", width, p, q, "difference");
  for (size_t i = 0; i < r.logs.size(); ++i) {
    const auto& [name, value] = r.logs[i];
    const double other = c.logs[i].second;
    std::cout << fmt::format("  {:<{}}  {:>10.4f}  {:>10.4f}  {}\n", name, width, value, other,
                             format_difference(name, value - other));
  }
  std::cout << fmt::format("  {:<{}}  {:>15}  {:>14}  {:>15}\n", "output", width, "top-1 agreement",
                           "max rel. error", "mean rel. error");
  for (const OutputAgreement& o : c.outputs)
    std::cout << fmt::format(
        "  {:<{}}  {:>15}  {:>14.3e}  {:>15.3e}\n", o.output, width,
        o.top1_agreement ? fmt::format("{:.2f} %", 100 * *o.top1_agreement) : "-",
        o.max_relative_error, o.mean_relative_error);
  std::cout << fmt::format("  (relative error: |{} - {}| / max(|{}|, {:g}) per value)\n", p, q, q,
                           c.relative_error_floor);
}

nlohmann::ordered_json comparison_json(const EvaluateResult& r) {
  const PrecisionComparison& c = *r.against;
  nlohmann::ordered_json j;
  j["precision"] = precision_name(c.precision);
  for (const auto& [k, v] : c.logs) j[k] = v;
  nlohmann::ordered_json difference = nlohmann::ordered_json::object();
  for (size_t i = 0; i < r.logs.size(); ++i)
    difference[r.logs[i].first] = r.logs[i].second - c.logs[i].second;
  j["difference"] = difference;  // the --precision plan's value minus this one's
  nlohmann::ordered_json outputs = nlohmann::ordered_json::object();
  for (const OutputAgreement& o : c.outputs) {
    nlohmann::ordered_json out;
    out["top1_agreement"] = o.top1_agreement ? nlohmann::ordered_json(*o.top1_agreement)
                                             : nlohmann::ordered_json(nullptr);
    out["max_relative_error"] = o.max_relative_error;
    out["mean_relative_error"] = o.mean_relative_error;
    outputs[o.output] = out;
  }
  j["outputs"] = outputs;
  j["relative_error_floor"] = c.relative_error_floor;
  return j;
}

int cmd_evaluate(const EvaluateCommandOptions& o) {
  TrainerOptions options;
  options.threads = o.threads;
  options.weights_file = o.weights;
  options.evaluate_precision = parse_precision_option(o.precision);
  if (!o.against.empty()) {
    options.evaluate_against = *parse_precision_option(o.against, "--against");
    if (options.evaluate_against == options.evaluate_precision)
      throw UsageError(fmt::format(
          "--against {}: the same precision as --precision; compare two different ones, e.g. "
          "--precision bf16 --against f32 (choices: {})",
          o.against, fmt::join(precision_names(), ", ")));
  }
  apply(o.pipeline, options);
  if (o.batch_size > 0) options.overrides.batch_size = o.batch_size;
  Trainer trainer(o.graph, options);
  const EvaluateResult r = trainer.evaluate(o.data);
  for (const Precision p : {r.precision, r.against ? r.against->precision : r.precision})
    if (const std::string w = precision_warning(p); !w.empty()) {
      std::cerr << "warning: " << w << "\n";
      break;
    }
  report_skipped(r.skipped_rows);
  if (o.json) {
    nlohmann::ordered_json j;
    j["samples"] = r.samples;
    for (const auto& [k, v] : r.logs) j[k] = v;
    if (r.against) {
      j["precision"] = precision_name(r.precision);
      j["against"] = comparison_json(r);
    }
    std::cout << json_text(j);
  } else {
    std::cout << fmt::format("{} samples{}\n", r.samples, format_log_values(r.logs));
    if (r.against) print_comparison(r, r.precision);
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
  c->add_option("--against", o->against,
                fmt::format("Also run the data in this precision ({}) and compare: both plans' "
                            "metrics and their difference, per output the top-1 agreement and "
                            "the max and mean relative error (e.g. --precision bf16 --against "
                            "f32)",
                            fmt::join(precision_names(), ", ")));
  add_data_pipeline_options(c, o->pipeline);
  return {c, [o] { return cmd_evaluate(*o); }};
}

}  // namespace fg::cli

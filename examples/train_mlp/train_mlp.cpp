// Trains the MLP of graph.yaml with fg::Trainer (include/fusiongraph/training.hpp) on a
// synthetic data folder it writes itself, resumes from the checkpoint, evaluates, and runs the
// trained weights with an fg::Session.
//
// Usage: train_mlp [WORK_DIR]   (default: ./train_mlp_work; exit status 0 when the validation
// accuracy reaches 0.9, 1 otherwise)
#include <fmt/format.h>

#include <filesystem>
#include <fusiongraph/fusiongraph.hpp>
#include <fusiongraph/training.hpp>
#include <iostream>
#include <random>

namespace fs = std::filesystem;

namespace {

// data/features.npy (N, 4) float32 and data/classifier.npy (N, 2) one-hot float32.
void write_data_folder(const fs::path& dir, int64_t samples, uint32_t seed) {
  fs::create_directories(dir);
  fg::Tensor x(fg::DType::f32, {samples, 4}), y(fg::DType::f32, {samples, 2});
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  float* xs = x.mutable_data<float>();
  float* ys = y.mutable_data<float>();
  for (int64_t i = 0; i < samples; ++i) {
    for (int j = 0; j < 4; ++j) xs[i * 4 + j] = u(rng);
    const bool one = xs[i * 4] + xs[i * 4 + 1] > xs[i * 4 + 2] + xs[i * 4 + 3];
    ys[i * 2] = one ? 0.f : 1.f;
    ys[i * 2 + 1] = one ? 1.f : 0.f;
  }
  fg::write_npy((dir / "features.npy").string(), x);
  fg::write_npy((dir / "classifier.npy").string(), y);
}

// Prints one line per epoch (graph-runner train uses fg::ProgressBar instead).
class PrintEpochs : public fg::TrainingCallback {
 public:
  void on_epoch_end(const fg::EpochResult& e) override {
    std::string line = fmt::format("epoch {}/{}", e.epoch + 1, e.epochs);
    for (const auto& [name, value] : e.logs) line += fmt::format(" - {}: {:.4f}", name, value);
    std::cout << line << "\n";
  }
};

double log_value(const fg::TrainingLogs& logs, const std::string& name) {
  for (const auto& [k, v] : logs)
    if (k == name) return v;
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const fs::path work = argc > 1 ? fs::path(argv[1]) : fs::path("train_mlp_work");
    const std::string graph = std::string(TRAIN_MLP_DIR) + "/graph.yaml";
    write_data_folder(work / "train", 1000, 1);
    write_data_folder(work / "test", 200, 2);
    const std::string checkpoint = (work / "trained.safetensors").string();

    // 10 of the section's 20 epochs, saved after each one.
    fg::TrainerOptions options;
    options.threads = 1;
    options.overrides.epochs = 10;
    PrintEpochs print;
    fg::FitOptions fit;
    fit.save_path = checkpoint;
    fit.callbacks.push_back(&print);
    {
      fg::Trainer trainer(graph, options);
      trainer.fit((work / "train").string(), fit);
    }

    // A new trainer continues from the checkpoint up to 20 epochs in total (initial_epoch 10).
    options.overrides.epochs = 20;
    fg::Trainer trainer(graph, options);
    trainer.resume(checkpoint);
    std::cout << "resumed after epoch " << trainer.initial_epoch() << "\n";
    const fg::FitResult result = trainer.fit((work / "train").string(), fit);
    const double val_accuracy = log_value(result.history.back().logs, "val_accuracy");

    const fg::EvaluateResult test = trainer.evaluate((work / "test").string());
    std::cout << fmt::format("test: {} samples - loss: {:.4f} - accuracy: {:.4f}\n", test.samples,
                             log_value(test.logs, "loss"), log_value(test.logs, "accuracy"));

    // The checkpoint is also a plain weights file: an inference session reads it.
    fg::CompileOptions compile;
    compile.weights_file = checkpoint;
    const fg::Session session = fg::load(graph, compile);
    fg::Tensor x(fg::DType::f32, {1, 4});
    float* xs = x.mutable_data<float>();
    xs[0] = 0.9f, xs[1] = 0.8f, xs[2] = -0.5f, xs[3] = -0.7f;  // class 1
    const auto outputs = session.run({{"features", x}});
    const float* p = outputs.at("classifier").data<float>();
    std::cout << fmt::format("p(class 1 | [0.9, 0.8, -0.5, -0.7]) = {:.3f}\n", p[1]);

    const bool ok = val_accuracy >= 0.9 && p[1] > 0.5f;
    std::cout << (ok ? "train_mlp: ok\n" : "train_mlp: FAILED\n");
    return ok ? 0 : 1;
  } catch (const fg::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}

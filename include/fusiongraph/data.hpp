// Raw inputs: the preprocessing a graph declares (docs/data.md) applied to file paths and
// texts, giving the input tensors of a batch; and output probabilities mapped to class names.
//
//   fg::CompileOptions options;
//   options.weights_file = "trained.safetensors";
//   fg::Session session = fg::load("fashion.yaml", options);
//   fg::RawInputs raw(session, options.weights_file);   // config + learnt vocabularies/classes
//   auto inputs = raw.batch({{"image", {"shoe.png"}}, {"audio", {"say.wav"}},
//                            {"text", {"a leather ankle boot"}}});
//   auto outputs = session.run(inputs);
//   for (const fg::ClassProbability& c : raw.top_classes("classifier", outputs.at("classifier"), 0,
//   3))
//     std::cout << c.name << " " << c.probability << "\n";
//
// Every failure is an fg::Error naming the input and the value (and the decoder's message).
// See docs/api.md, "Raw inputs".
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/data/preprocessors.hpp"
#include "engine/data/table.hpp"
#include "fusiongraph/fusiongraph.hpp"

namespace fg {

// One class of a category output with its probability (RawInputs::top_classes).
struct ClassProbability {
  int64_t index = 0;  // class id: the column of the output
  std::string name;   // the class name; "class <index>" when the output has no class list
  float probability = 0;
};

struct RawBatchOptions {
  // Relative paths are resolved against this folder ("" = the current directory).
  std::string base_dir;
  // Samples decoded and preprocessed in parallel on this many threads (>= 1). The tensors do
  // not depend on it.
  int threads = 1;
};

// The preprocessing of one graph: its config (from the graph's `preprocessing:` sections) and
// what training learnt (vocabularies, class lists: the weights file's safetensors metadata key
// "fusiongraph.preprocessing"). Cheap to copy; const methods may be called from several threads.
class RawInputs {
 public:
  RawInputs() = default;
  // `weights_file`: the trained weights (may be "" when nothing is learnt, e.g. vocabulary
  // files and listed classes, or for class names only). A weights file without the metadata
  // key is no error here; batch() then names what is missing. `graph_dir`: where vocabulary
  // files are looked up ("" = the folder of the graph's file). Throws fg::Error for an
  // unreadable weights header, a vocabulary file that cannot be read, or a learnt state that
  // does not fit the graph.
  RawInputs(const CompiledGraph& graph, const std::string& weights_file,
            const std::string& graph_dir = "");
  RawInputs(const Session& session, const std::string& weights_file,
            const std::string& graph_dir = "");
  // The graph with preprocessing that is set up already, learnt state included (what
  // fg::Trainer::raw_inputs gives: a trainer's adapted or loaded vocabularies and classes).
  RawInputs(const CompiledGraph& graph, Preprocessors preprocessors);

  const Preprocessors& preprocessors() const;
  // Learns what the weights file did not give (vocabularies, class lists) from a table's
  // columns, as training does (Preprocessors::adapt); nothing when nothing is missing. This
  // object only: copies made before keep their state.
  void adapt(const Table& table);
  // The graph inputs that declare preprocessing (graph order), and whether `input` does.
  const std::vector<std::string>& raw_input_names() const;
  bool takes_raw(const std::string& input) const;

  // The input tensors of a batch: values[input][i] is sample i's raw value of that input (a
  // path for image and audio inputs, the text itself for text inputs); every listed input must
  // declare preprocessing and have the same number of samples (>= 1). A tensor per listed
  // input, batch first, in the input's dtype. Dims the graph declares `null` (audio without
  // max_length, text without output_sequence_length, spectrogram frames) are padded with zeros
  // at the end to the longest sample of the batch (id 0 is text's padding); other dims must
  // match the declaration. Throws fg::Error naming the input, the sample and the value.
  std::map<std::string, Tensor> batch(const std::map<std::string, std::vector<std::string>>& values,
                                      const RawBatchOptions& options = {}) const;
  // The same for rows [begin, end) of a table: a column per raw input, named as the input;
  // paths relative to the table's folder. Errors name the table, row and column. Columns for
  // inputs without preprocessing and for outputs are ignored.
  std::map<std::string, Tensor> batch(const Table& table, int64_t begin, int64_t end,
                                      int threads = 1) const;

  // The class names of an output with `type: category` (class order), else empty.
  const std::vector<std::string>& class_names(const std::string& output) const;
  // The `top` most probable classes of sample `sample` of a [batch, classes] output, most
  // probable first (ties: lower index first). Throws fg::Error when the output's shape does not
  // fit its class list.
  std::vector<ClassProbability> top_classes(const std::string& output, const Tensor& probabilities,
                                            int64_t sample, int top) const;

 private:
  struct State;
  std::shared_ptr<const State> state_;
  const State& state() const;
};

// The JSON text stored under kPreprocessingMetadataKey in a safetensors file's metadata, or ""
// when the file has none. Reads only the header. Throws fg::Error naming the file.
std::string read_preprocessing_metadata(const std::string& weights_file);

}  // namespace fg

#include "tests/fuzz/fuzz_entry_points.hpp"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include "engine/data/audio.hpp"
#include "engine/data/image.hpp"
#include "engine/data/table.hpp"
#include "engine/file_io.hpp"
#include "engine/npy.hpp"
#include "engine/safetensors.hpp"
#include "engine/weights.hpp"
#include "framework/compiler.hpp"
#include "framework/error.hpp"
#include "framework/summary.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"

namespace fg::fuzz {

const char* const kValidateGraph = R"(name: fuzz_weights
inputs:
  x: {shape: [8]}
  ids: {shape: [6], dtype: int32}
nodes:
  - {name: d, op: dense, input: x, units: 4}
  - {name: bn, op: batch_normalization, input: d}
  - {name: e, op: embedding, input: ids, input_dim: 10, output_dim: 3}
  - {name: c, op: conv1d, input: e, filters: 2, kernel_size: 3}
  - {name: gp, op: global_average_pooling1d, input: c}
  - {name: cat, op: concatenate, inputs: [bn, gp]}
  - {name: head, op: dense, input: cat, units: 2, activation: softmax}
outputs: [head]
)";

namespace {

// The input as a file the readers open by path: an anonymous in-memory file (memfd), named
// /proc/self/fd/<n>; a regular file to fstat and mmap, never on disk, gone when closed.
class MemoryFile {
 public:
  MemoryFile(const uint8_t* data, size_t size) {
    fd_ = memfd_create("fuzz_input", MFD_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error(fmt::format("memfd_create: {}", std::strerror(errno)));
    size_t done = 0;
    while (done < size) {
      ssize_t n = write(fd_, data + done, size - done);
      if (n <= 0) throw std::runtime_error(fmt::format("write: {}", std::strerror(errno)));
      done += static_cast<size_t>(n);
    }
    path_ = fmt::format("/proc/self/fd/{}", fd_);
  }
  ~MemoryFile() { close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// Reads every byte of a tensor, so that AddressSanitizer sees reads past an owned buffer; the
// sum goes to a volatile so that the reads are not optimised away.
void read_all(const Tensor& t) {
  const auto* p = static_cast<const unsigned char*>(t.raw());
  unsigned sum = 0;
  for (size_t i = 0; p != nullptr && i < t.bytes(); ++i) sum += p[i];
  volatile unsigned sink = sum;
  (void)sink;
}

// A borrowed tensor's bytes must lie inside the file's bytes (whatever holds them: a mapping,
// which ASan does not watch and where a read past the end stays silent up to the end of the
// page, or owned memory); `File` has data() and size().
template <typename File>
void check_inside(const Tensor& t, const File& file, const std::string& name) {
  const auto* begin = static_cast<const unsigned char*>(t.raw());
  const unsigned char* file_end = file.data() + file.size();
  if (begin < file.data() || begin >= file_end) return;  // owned (copied or converted)
  if (t.bytes() > static_cast<size_t>(file_end - begin)) {
    fmt::print(stderr, "tensor '{}' borrows {} bytes at offset {} of a {}-byte file\n", name,
               t.bytes(), begin - file.data(), file.size());
    std::abort();
  }
}

const OpRegistry& registry() {
  static const OpRegistry ops = builtin_ops();
  return ops;
}

// the summary as a table and as JSON, and the DOT
void summarize_all(const CompiledGraph& graph, const SummaryOptions& options) {
  const Summary summary = summarize(graph, options);
  format_summary_table(summary);
  format_summary_json(summary);
  format_dot(graph, options);
}

// Sizes for every null dim of every input: all 3 (odd and small), or what graph-runner run and
// bench bind without --dim: the input's default_shape, else 100.
std::map<std::string, std::vector<int64_t>> null_dims(const GraphDef& def, bool as_runner) {
  std::map<std::string, std::vector<int64_t>> dims;
  for (const InputDef& in : def.inputs) {
    std::vector<int64_t> values;
    for (size_t k = 0; k < in.shape.size(); ++k) {
      if (in.shape[k] != kDynamic) continue;
      if (!as_runner)
        values.push_back(3);
      else
        values.push_back(k < in.default_shape.size() ? in.default_shape[k] : 100);
    }
    if (!values.empty()) dims[in.name] = values;
  }
  return dims;
}

// bind with these shapes, then every node's weights and FLOPs, and the concrete summary
void bind_and_summarize(const CompiledGraph& graph, const SummaryOptions& concrete) {
  const std::vector<TensorType> types =
      graph.bind(graph.concrete_input_shapes(concrete.batch, concrete.dims));
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    graph.node_weights(i, types);
    graph.node_stats(i, types);
  }
  summarize_all(graph, concrete);
}

// A vector's values summed into a volatile: every element read (see read_all).
template <typename T>
void read_values(const std::vector<T>& values) {
  T sum{};
  for (const T& v : values) sum += v;
  volatile T sink = sum;
  (void)sink;
}

// The small mel spectrogram of the audio target: 8 kHz, frames of 64 samples every 32, 8 bands.
AudioPreprocessing mel_settings() {
  AudioPreprocessing config;
  config.sample_rate = 8000;
  config.features = AudioFeatures::mel;
  config.frame_length = 64;
  config.frame_step = 32;
  config.fft_length = 64;
  config.n_mels = 8;
  return config;
}

// A per-process temporary folder for the table target's symbolic links (Table::read picks the
// format by the file's extension, and a memfd's /proc/self/fd/N name has none); removed at exit.
class LinkFolder {
 public:
  LinkFolder() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = fmt::format("{}/fg_fuzz_table.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(pattern.data()))
      throw std::runtime_error(fmt::format("mkdtemp: {}", std::strerror(errno)));
    path_ = pattern;
  }
  ~LinkFolder() { rmdir(path_.c_str()); }
  LinkFolder(const LinkFolder&) = delete;
  LinkFolder& operator=(const LinkFolder&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A symbolic link named `name` in the link folder to `target`, removed when done.
class NamedLink {
 public:
  NamedLink(const std::string& target, const std::string& name) {
    static const LinkFolder folder;
    path_ = folder.path() + "/" + name;
    unlink(path_.c_str());  // left over from an input that crashed the process
    if (symlink(target.c_str(), path_.c_str()) != 0)
      throw std::runtime_error(fmt::format("symlink {}: {}", path_, std::strerror(errno)));
  }
  ~NamedLink() { unlink(path_.c_str()); }
  NamedLink(const NamedLink&) = delete;
  NamedLink& operator=(const NamedLink&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Every cell of the table read (its bytes, the missing flag, the line and the message prefix).
void read_table(const Table& table) {
  unsigned sum = 0;
  const int columns = static_cast<int>(table.columns().size());
  for (const std::string& name : table.columns()) sum += table.column_index(name);
  for (int64_t row = 0; row < table.rows(); ++row) {
    sum += static_cast<unsigned>(table.file_line(row));
    for (int c = 0; c < columns; ++c) {
      for (char ch : table.cell(row, c)) sum += static_cast<unsigned char>(ch);
      sum += table.missing(row, c);
    }
    if (columns > 0) sum += static_cast<unsigned>(table.where(row, row % columns).size());
  }
  volatile unsigned sink = sum;
  (void)sink;
}

}  // namespace

void graph_yaml(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::shared_ptr<GraphDef> def = load_graph_string(text, "fuzz.yaml");
  const CompiledGraph graph = compile_graph(def, registry());
  graph.all_weights();
  summarize_all(graph, SummaryOptions{});

  // Either binding may fail where the other fits (a pooling window longer than 3 steps): both
  // are tried, then the first error is thrown.
  std::optional<Error> first_error;
  for (const SummaryOptions& options :
       {SummaryOptions{2, null_dims(*def, false)}, SummaryOptions{1, null_dims(*def, true)}}) {
    try {
      bind_and_summarize(graph, options);
    } catch (const Error& e) {
      if (!first_error) first_error = e;
    }
  }
  if (first_error) throw *first_error;
}

void safetensors_file(const uint8_t* data, size_t size) {
  const MemoryFile file(data, size);
  {
    const SafetensorsContents contents = read_safetensors(file.path());
    for (const auto& [name, tensor] : contents.tensors) {
      if (contents.file) check_inside(tensor, *contents.file, name);
      read_all(tensor);
    }
  }
  static const CompiledGraph graph =
      compile_graph(load_graph_string(kValidateGraph, "fuzz_weights.yaml"), registry());
  const WeightStore store = WeightStore::load_safetensors(file.path());
  store.validate(graph);
}

void npy_file(const uint8_t* data, size_t size) {
  const MemoryFile file(data, size);
  // as a float32 input and as token ids: either may refuse the file (floats never become int32)
  try {
    read_all(read_npy(file.path(), DType::f32, "x"));
  } catch (const Error&) {
  }
  read_all(read_npy(file.path(), DType::i32, "ids"));
}

void image_file(const uint8_t* data, size_t size) {
  const DecodedImage image = decode_image(data, size, "fuzz");
  read_values(image.pixels);
  if (image.height * image.width > kMaxConvertedPixels) return;
  for (int64_t channels : {1, 3}) {
    const DecodedImage converted = convert_channels(image, channels);
    read_values(converted.pixels);
    for (ResizeMethod method : {ResizeMethod::bilinear, ResizeMethod::nearest, ResizeMethod::area})
      for (bool crop : {false, true})
        read_values(resize_image(converted, 7, 5, method, crop).pixels);
  }
}

void audio_file(const uint8_t* data, size_t size) {
  const MemoryFile file(data, size);
  DecodedAudio audio = decode_audio_file(file.path());
  read_values(audio.samples);
  const AudioPreprocessing config = mel_settings();
  // resampled only when both sides stay small: libsamplerate's best sinc costs thousands of
  // operations a sample
  const double resampled = static_cast<double>(audio.frames()) *
                           static_cast<double>(config.sample_rate) /
                           static_cast<double>(audio.sample_rate);
  if (audio.sample_rate != config.sample_rate && audio.frames() <= kMaxResampledFrames &&
      resampled <= kMaxResampledFrames) {
    audio = resample_audio(audio, config.sample_rate);
    read_values(audio.samples);
  }
  DecodedAudio mono = downmix_to_mono(audio);
  // a long sound (a FLAC of silence holds minutes in a few KB) is cut before the spectrogram
  if (mono.frames() > kMaxSpectrogramFrames) fit_audio_length(mono, kMaxSpectrogramFrames);
  normalize_peak(mono.samples);
  read_values(mel_spectrogram(mono.samples, config));
}

void table_file(const uint8_t* data, size_t size) {
  const MemoryFile file(data, size);
  // as each format: any may refuse the bytes; when all three do, the first error is thrown
  std::optional<Error> first_error;
  bool read_one = false;
  for (const char* name : {"fuzz.csv", "fuzz.tsv", "fuzz.jsonl"}) {
    try {
      const NamedLink link(file.path(), name);
      read_table(Table::read(link.path()));
      read_one = true;
    } catch (const Error& e) {
      if (!first_error) first_error = e;
    }
  }
  if (!read_one && first_error) throw *first_error;
}

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {{"graph", graph_yaml}, {"safetensors", safetensors_file},
                                          {"npy", npy_file},     {"image", image_file},
                                          {"audio", audio_file}, {"table", table_file}};
  return all;
}

}  // namespace fg::fuzz

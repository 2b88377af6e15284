// The preprocessed cache (engine/data/preprocess_cache.hpp).
#include "engine/data/preprocess_cache.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/data/batch_prefetcher.hpp"
#include "engine/data/preprocessors.hpp"
#include "engine/file_io.hpp"
#include "engine/mapped_file.hpp"
#include "engine/npy.hpp"
#include "framework/error.hpp"

namespace fg {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr const char* kManifest = "manifest.json";
constexpr const char* kCacheFormat = "fusiongraph-cache-1";
constexpr size_t kShardBytes = size_t(64) << 20;  // about this much per shard (all fields)

size_t elements_of(const Dims& d) {
  size_t n = 1;
  for (int64_t v : d) n *= static_cast<size_t>(v);
  return n;
}

std::vector<DataField> all_fields(const Dataset& data) {
  std::vector<DataField> fields = data.inputs();
  fields.insert(fields.end(), data.targets().begin(), data.targets().end());
  return fields;
}

std::string shard_file(const std::string& dir, size_t shard, size_t field) {
  return (fs::path(dir) / fmt::format("shard-{:05}-{}.npy", shard, field)).string();
}

// One mapped shard file per field.
struct Shard {
  int64_t rows = 0;
  std::vector<std::shared_ptr<const MappedFile>> files;
  std::vector<size_t> data_offsets;
};

class CachedSource final : public DataSource {
 public:
  CachedSource(std::string dir, std::vector<DataField> inputs, std::vector<DataField> targets,
               std::vector<Shard> shards, std::vector<std::string> skipped)
      : dir_(std::move(dir)),
        inputs_(std::move(inputs)),
        targets_(std::move(targets)),
        shards_(std::move(shards)),
        skipped_(std::move(skipped)) {
    int64_t total = 0;
    for (const Shard& s : shards_) {
      starts_.push_back(total);
      total += s.rows;
    }
    rows_ = total;
    for (const auto* part : {&inputs_, &targets_})
      for (const DataField& f : *part)
        sample_bytes_.push_back(elements_of(f.sample_shape) * dtype_size(f.dtype));
  }
  int64_t size() const override { return rows_; }
  const std::vector<DataField>& inputs() const override { return inputs_; }
  const std::vector<DataField>& targets() const override { return targets_; }
  std::vector<std::string> skipped() const override { return skipped_; }
  std::string describe() const override {
    std::string out =
        fmt::format("cache {}: {} samples in {} shards\n", dir_, rows_, shards_.size());
    for (const auto* part : {&inputs_, &targets_})
      for (const DataField& f : *part)
        out += fmt::format("  {} '{}': {} {}\n", f.target ? "targets of output" : "input", f.name,
                           dtype_name(f.dtype), format_shape(f.sample_shape));
    return out;
  }
  void read(const int64_t* rows, int64_t count, int64_t offset, Batch& batch,
            int threads) const override {
    (void)threads;  // a memcpy per sample and field
    for (int64_t i = 0; i < count; ++i) {
      const int64_t row = rows[i] + offset;
      const size_t s = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), row) -
                                           starts_.begin() - 1);
      const int64_t local = row - starts_[s];
      for (size_t f = 0; f < sample_bytes_.size(); ++f) {
        Tensor& t = f < inputs_.size() ? batch.inputs[f] : batch.targets[f - inputs_.size()];
        const size_t n = sample_bytes_[f];
        std::memcpy(t.mutable_data<unsigned char>() + i * n,
                    shards_[s].files[f]->data() + shards_[s].data_offsets[f] + local * n, n);
      }
    }
  }

 private:
  std::string dir_;
  std::vector<DataField> inputs_, targets_;
  std::vector<Shard> shards_;
  std::vector<int64_t> starts_;
  std::vector<size_t> sample_bytes_;
  int64_t rows_ = 0;
  std::vector<std::string> skipped_;
};

Json fields_json(const std::vector<DataField>& fields) {
  Json out = Json::array();
  for (const DataField& f : fields)
    out.push_back({{"name", f.name},
                   {"target", f.target},
                   {"sparse", f.sparse},
                   {"dtype", dtype_name(f.dtype)},
                   {"shape", f.sample_shape}});
  return out;
}

// The cache's shards when its manifest is there, readable, of this checksum and these fields,
// and every shard file holds what the manifest says; nullopt otherwise (stale or broken).
std::optional<std::pair<std::vector<Shard>, std::vector<std::string>>> load_cache(
    const std::string& dir, const std::string& checksum, const std::vector<DataField>& fields) {
  const std::string manifest = (fs::path(dir) / kManifest).string();
  std::error_code ec;
  if (!fs::is_regular_file(manifest, ec)) return std::nullopt;
  try {
    const auto bytes = FileContents::read(manifest, 1 << 26);
    const Json m = Json::parse(bytes->data(), bytes->data() + bytes->size());
    if (m.at("format") != kCacheFormat || m.at("checksum") != checksum ||
        m.at("fields") != fields_json(fields))
      return std::nullopt;
    std::vector<Shard> shards;
    for (const Json& s : m.at("shards")) {
      Shard shard;
      shard.rows = s.at("rows").get<int64_t>();
      for (size_t f = 0; f < fields.size(); ++f) {
        auto file = MappedFile::open(shard_file(dir, shards.size(), f));
        const NpyHeader h = parse_npy_header(file->data(), file->size());
        Dims want = {shard.rows};
        want.insert(want.end(), fields[f].sample_shape.begin(), fields[f].sample_shape.end());
        const char* descr = fields[f].dtype == DType::i32 ? "<i4" : "<f4";
        if (h.shape != want || h.descr != descr) return std::nullopt;
        shard.data_offsets.push_back(h.data_offset);
        shard.files.push_back(std::move(file));
      }
      shards.push_back(std::move(shard));
    }
    return std::make_pair(std::move(shards), m.at("skipped").get<std::vector<std::string>>());
  } catch (const std::exception&) {
    return std::nullopt;  // unreadable: rebuilt
  }
}

// Removes the manifest first (a cache is never half valid), then the old shards.
void clear_cache(const std::string& dir) {
  std::error_code ec;
  fs::remove(fs::path(dir) / kManifest, ec);
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("shard-", 0) == 0 && name.size() > 4 &&
        name.compare(name.size() - 4, 4, ".npy") == 0) {
      std::error_code rm;
      fs::remove(it->path(), rm);
    }
  }
}

// Decodes shard `s` (samples [first, first + rows) of `data`) sample by sample and writes its
// files; returns the skipped samples' messages (skip) or throws the first failure.
std::vector<std::string> build_shard(const Dataset& data, const std::string& dir, size_t s,
                                     int64_t first, int64_t rows, bool skip) {
  const std::vector<DataField> fields = all_fields(data);
  std::vector<std::vector<unsigned char>> bytes(fields.size());
  std::vector<std::string> skipped;
  Batch one;
  int64_t kept = 0;
  for (int64_t r = first; r < first + rows; ++r) {
    try {
      data.gather(&r, 1, one, 1);
    } catch (const Error& e) {
      if (!skip) throw;
      skipped.push_back(e.message());
      continue;
    }
    for (size_t f = 0; f < fields.size(); ++f) {
      const Tensor& t =
          f < data.inputs().size() ? one.inputs[f] : one.targets[f - data.inputs().size()];
      const auto* p = static_cast<const unsigned char*>(t.raw());
      bytes[f].insert(bytes[f].end(), p, p + t.bytes());
    }
    ++kept;
  }
  for (size_t f = 0; f < fields.size(); ++f) {
    Dims shape = {kept};
    shape.insert(shape.end(), fields[f].sample_shape.begin(), fields[f].sample_shape.end());
    Tensor t(fields[f].dtype, shape);
    if (!bytes[f].empty()) std::memcpy(t.mutable_data<unsigned char>(), bytes[f].data(), bytes[f].size());
    write_npy(shard_file(dir, s, f), t);
  }
  skipped.insert(skipped.begin(), fmt::format("{}", kept));  // the count first
  return skipped;
}

void build_cache(const Dataset& data, const std::string& dir, const std::string& checksum,
                 int workers, bool skip) {
  const std::vector<DataField> fields = all_fields(data);
  size_t row_bytes = 0;
  for (const DataField& f : fields) row_bytes += elements_of(f.sample_shape) * dtype_size(f.dtype);
  const int64_t per_shard =
      std::max<int64_t>(1, static_cast<int64_t>(kShardBytes / std::max<size_t>(1, row_bytes)));
  const int64_t shards = (data.size() + per_shard - 1) / per_shard;
  std::vector<std::vector<std::string>> results(static_cast<size_t>(shards));
  // Shards spread over the workers; the contents do not depend on the worker count.
  run_on_workers(shards, workers, [&](int64_t b, int64_t e) {
    for (int64_t s = b; s < e; ++s) {
      const int64_t first = s * per_shard;
      results[s] = build_shard(data, dir, static_cast<size_t>(s), first,
                               std::min(per_shard, data.size() - first), skip);
    }
  });
  Json manifest{{"format", kCacheFormat}, {"checksum", checksum}, {"fields", fields_json(fields)}};
  Json shard_list = Json::array();
  std::vector<std::string> skipped = data.skipped();
  for (const auto& r : results) {
    shard_list.push_back({{"rows", std::stoll(r.front())}});
    skipped.insert(skipped.end(), r.begin() + 1, r.end());
  }
  manifest["shards"] = shard_list;
  manifest["skipped"] = skipped;
  const std::string text = manifest.dump(1);
  write_file_atomic((fs::path(dir) / kManifest).string(), {text});
}

}  // namespace

uint64_t fnv1a64(const void* data, size_t size, uint64_t hash) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    hash ^= p[i];
    hash *= 0x100000001b3ull;
  }
  return hash;
}

std::string cache_checksum(const std::string& source_path, const Preprocessors& preprocessors,
                           const Dataset& data) {
  const std::string key = data.source().content_key();
  if (key.empty())
    throw Error("this data set cannot be cached (--cache takes a table)").in_file(source_path);
  const std::string all = key + "\n" + preprocessors.config_fingerprint() + "\n" +
                          preprocessors.state_json() + "\n" + fields_json(all_fields(data)).dump() +
                          "\n" + Json(data.skipped()).dump();
  return fmt::format("{:016x}", fnv1a64(all.data(), all.size(), kFnvOffset));
}

Dataset open_cached_dataset(const Dataset& data, const std::string& dir,
                            const std::string& checksum, int workers, bool skip_bad_rows) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw Error(
        fmt::format("cannot create the cache folder: {}", ec ? ec.message() : "not a folder"))
        .in_file(dir);
  const std::vector<DataField> fields = all_fields(data);
  auto cache = load_cache(dir, checksum, fields);
  if (!cache) {
    clear_cache(dir);
    build_cache(data, dir, checksum, workers, skip_bad_rows);
    cache = load_cache(dir, checksum, fields);
    if (!cache) throw Error("the cache just written cannot be read back").in_file(dir);
  }
  int64_t rows = 0;
  for (const Shard& s : cache->first) rows += s.rows;
  if (rows == 0)
    throw Error(fmt::format("every row of the table is bad ({} skipped); the first: {}",
                            cache->second.size(),
                            cache->second.empty() ? "" : cache->second.front()))
        .in_file(dir);
  return Dataset(std::make_shared<CachedSource>(dir, data.inputs(), data.targets(),
                                                std::move(cache->first), std::move(cache->second)));
}

}  // namespace fg

#include "cli/arguments.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <utility>

namespace fg::cli {

namespace {

// The whole text as a decimal integer of type T, or false.
template <typename T>
bool read_integer(const std::string& text, T& value) {
  if (text.empty() || (std::is_unsigned_v<T> && text[0] == '-')) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return ec == std::errc() && ptr == end;
}

int64_t positive_size(const std::string& flag, const std::string& part, const std::string& what) {
  int64_t v = 0;
  if (!read_integer(part, v) || v < 1)
    throw UsageError(fmt::format("{} {}: '{}' is not a positive size (expected 1..{})", flag, what,
                                 part, std::numeric_limits<int64_t>::max()));
  return v;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    const size_t next = text.find(sep, pos);
    parts.push_back(text.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
    if (next == std::string::npos) return parts;
    pos = next + 1;
  }
}

// NAME=VALUE -> {NAME, VALUE}; a usage error naming `flag` and `form` when malformed.
std::pair<std::string, std::string> name_value(const std::string& flag, const std::string& spec,
                                               const std::string& form) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
    throw UsageError(fmt::format("{} takes {}, got '{}'", flag, form, spec));
  return {spec.substr(0, eq), spec.substr(eq + 1)};
}

template <typename V>
void insert_once(std::map<std::string, V>& map, const std::string& flag, const std::string& name,
                 V value) {
  if (!map.emplace(name, std::move(value)).second)
    throw UsageError(fmt::format("{} {} is given twice; give each input at most once", flag, name));
}

}  // namespace

CLI::Validator integer_in(int64_t lo, int64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        int64_t v = 0;
        if (read_integer(text, v) && v >= lo && v <= hi) return "";
        return fmt::format("expected an integer in {}..{}, got '{}'", lo, hi, text);
      },
      fmt::format("INT in [{}..{}]", lo, hi));
}

CLI::Validator unsigned_64() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        uint64_t v = 0;
        if (read_integer(text, v)) return "";
        return fmt::format("expected an integer in 0..{}, got '{}'",
                           std::numeric_limits<uint64_t>::max(), text);
      },
      "UINT64");
}

CLI::Validator finite_in(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = text.empty() ? NAN : std::strtod(text.c_str(), &end);
        if (end == text.c_str() + text.size() && std::isfinite(v) && v >= lo && v <= hi) return "";
        return fmt::format("expected a number in {}..{}, got '{}'", lo, hi, text);
      },
      fmt::format("NUMBER in [{}..{}]", lo, hi));
}

void add_data_pipeline_options(CLI::App* command, DataPipelineOptions& options) {
  command
      ->add_option("--workers", options.workers,
                   "Threads that decode and preprocess table rows ahead of the model (default 0: "
                   "2, or the hardware threads when fewer); results do not depend on it")
      ->check(integer_in(0, 1024));
  command->add_option("--cache", options.cache,
                      "Folder of preprocessed shards of a table: built on the first run, reused "
                      "while the table, its files and the preprocessing are unchanged");
  command->add_flag("--skip-bad-rows", options.skip_bad_rows,
                    "Skip table rows that fail to read or decode (listed on stderr) instead of "
                    "stopping at the first");
}

std::map<std::string, std::vector<int64_t>> parse_dims(const std::vector<std::string>& specs) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& spec : specs) {
    const auto [name, sizes_text] = name_value("--dim", spec, "NAME=SIZE (e.g. --dim audio=16000)");
    std::vector<int64_t> sizes;
    for (const auto& part : split(sizes_text, ','))
      sizes.push_back(positive_size("--dim", part, name));
    insert_once(out, "--dim", name, std::move(sizes));
  }
  return out;
}

std::map<std::string, std::string> parse_inputs(const std::vector<std::string>& specs) {
  std::map<std::string, std::string> out;
  for (const auto& spec : specs) {
    auto [name, file] = name_value("--input", spec, "NAME=FILE.npy");
    insert_once(out, "--input", name, std::move(file));
  }
  return out;
}

uint64_t parse_memory_size(const std::string& flag, const std::string& text) {
  auto fail = [&] {
    return UsageError(fmt::format(
        "{} takes bytes as an integer, optionally followed by K, M, G or T (powers of 1024), "
        "e.g. 512M or 8G (0: the machine's physical memory), up to {} bytes; got '{}'",
        flag, std::numeric_limits<uint64_t>::max(), text));
  };
  std::string digits = text;
  int shift = 0;
  if (!digits.empty()) {
    const std::string units = "KMGT";
    const size_t unit = units.find(static_cast<char>(std::toupper(digits.back())));
    if (unit != std::string::npos) {
      shift = 10 * static_cast<int>(unit + 1);
      digits.pop_back();
    }
  }
  uint64_t value = 0;
  if (!read_integer(digits, value)) throw fail();
  if (shift > 0 && value > (std::numeric_limits<uint64_t>::max() >> shift)) throw fail();
  return value << shift;
}

std::vector<int64_t> parse_sizes(const std::string& flag, const std::string& spec) {
  std::vector<int64_t> out;
  for (const auto& part : split(spec, ',')) {
    int64_t v = 0;
    if (!read_integer(part, v) || v < 1)
      throw UsageError(fmt::format(
          "{} takes positive sizes separated by commas (e.g. 1,8,32), got '{}'", flag, spec));
    out.push_back(v);
  }
  return out;
}

}  // namespace fg::cli

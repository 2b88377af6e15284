// No allocation on the execute path: the global operator new is replaced (for the whole test
// program) by one that counts, while a step's kernel runs, every allocation by its caller's
// library. Kernels bind their argument arrays and views once per execution state (Kernel::bind);
// from the second run of a plan on, the kernels' own code must allocate nothing.
//
// oneDNN itself allocates inside dnnl_primitive_execute (it converts the argument array into a
// std::unordered_map-based exec_args_t per call, in primitive_iface.cpp): those allocations are
// made from libdnnl's code and are counted apart, reported, and not held against the kernels.
#include <dlfcn.h>
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <link.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "engine/model.hpp"
#include "engine/plan.hpp"
#include "framework/compiler.hpp"
#include "framework/yaml_loader.hpp"
#include "layers/registry.hpp"
#include "tests/test_util.hpp"

namespace {

std::atomic<bool> g_counting{false};
std::atomic<long> g_ours{0}, g_onednn{0};

// The address ranges of libdnnl's loaded segments (found once, before counting starts).
struct Range {
  uintptr_t lo = 0, hi = 0;
};
Range g_dnnl_ranges[16];
int g_dnnl_count = 0;

int find_dnnl(struct dl_phdr_info* info, size_t, void*) {
  if (info->dlpi_name == nullptr || std::strstr(info->dlpi_name, "libdnnl") == nullptr) return 0;
  for (int i = 0; i < info->dlpi_phnum && g_dnnl_count < 16; ++i) {
    const auto& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    g_dnnl_ranges[g_dnnl_count++] = {lo, lo + ph.p_memsz};
  }
  return 0;
}

bool in_onednn(const void* caller) {
  const auto a = reinterpret_cast<uintptr_t>(caller);
  for (int i = 0; i < g_dnnl_count; ++i)
    if (a >= g_dnnl_ranges[i].lo && a < g_dnnl_ranges[i].hi) return true;
  return false;
}

void note(const void* caller) {
  if (!g_counting.load(std::memory_order_relaxed)) return;
  if (in_onednn(caller))
    g_onednn.fetch_add(1, std::memory_order_relaxed);
  else
    g_ours.fetch_add(1, std::memory_order_relaxed);
}

void* allocate(size_t n, size_t align) {
  if (n == 0) n = 1;
  void* p = nullptr;
  if (align <= alignof(std::max_align_t)) {
    p = std::malloc(n);
  } else if (posix_memalign(&p, align, n) != 0) {
    p = nullptr;
  }
  return p;
}

}  // namespace

// Every replaceable allocation form; the caller is the code that called operator new.
void* operator new(size_t n) {
  note(__builtin_return_address(0));
  if (void* p = allocate(n, 0)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) {
  note(__builtin_return_address(0));
  if (void* p = allocate(n, 0)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t n, std::align_val_t a) {
  note(__builtin_return_address(0));
  if (void* p = allocate(n, static_cast<size_t>(a))) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n, std::align_val_t a) {
  note(__builtin_return_address(0));
  if (void* p = allocate(n, static_cast<size_t>(a))) return p;
  throw std::bad_alloc();
}
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  note(__builtin_return_address(0));
  return allocate(n, 0);
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  note(__builtin_return_address(0));
  return allocate(n, 0);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t, std::align_val_t) noexcept {
  std::free(p);
}

namespace {

// Counts only while a kernel runs.
class CountInsideKernels final : public fg::StepObserver {
 public:
  void before_step(size_t) override { g_counting.store(true); }
  void after_step(size_t) override { g_counting.store(false); }
};

// conv, pooling, dense, lstm, gru, concat, softmax (an op and a dense activation), gated (a
// fusion op), a layer normalization and flatten; odd sizes.
const char* kGraph = R"(
name: alloc
inputs:
  image: {shape: [13, 13, 3]}
  seq: {shape: [7, 5]}
nodes:
  - {name: conv, op: conv2d, input: image, filters: 16, kernel_size: 3, activation: relu}
  - {name: pool, op: max_pooling2d, input: conv, pool_size: 2}
  - {name: conv2, op: conv2d, input: pool, filters: 8, kernel_size: 3, padding: same}
  - {name: flat, op: flatten, input: conv2}
  - {name: img, op: dense, input: flat, units: 9, activation: softsign}
  - {name: rnn, op: lstm, input: seq, units: 6}
  - {name: rnn2, op: gru, input: seq, units: 4}
  - {name: cat, op: concatenate, inputs: [rnn, rnn2]}
  - {name: norm, op: layer_normalization, input: cat}
  - {name: text, op: dense, input: norm, units: 9, activation: tanh}
  - {name: fused, op: gated, inputs: [img, text], units: 7}
  - {name: head, op: dense, input: fused, units: 5}
  - {name: probs, op: softmax, input: head}
outputs: [probs]
)";

}  // namespace

TEST_CASE("kernels allocate nothing on the second and later runs of a plan") {
  dl_iterate_phdr(find_dnnl, nullptr);
  REQUIRE(g_dnnl_count > 0);  // else every allocation would count as ours
  auto graph = std::make_shared<fg::CompiledGraph>(
      fg::compile_graph(fg::load_graph_string(kGraph, "alloc.yaml"), fg::builtin_ops()));
  for (bool optimize : {true, false}) {
    for (int threads : {1, 2}) {
      CAPTURE(optimize);
      CAPTURE(threads);
      fg::ModelOptions options;
      options.optimize = optimize;
      options.threads = threads;
      fg::Model model(graph, fg::WeightStore::initialize(*graph, 3), options);
      for (int64_t batch : {1, 3}) {
        CAPTURE(batch);
        const std::map<std::string, fg::Tensor> in{
            {"image", fg::test::random_tensor({batch, 13, 13, 3}, 1)},
            {"seq", fg::test::random_tensor({batch, 7, 5}, 2)}};
        CountInsideKernels counter;
        fg::RunOptions run;
        run.observer = &counter;
        const auto first = model.run(in, run);  // builds the plan and its execution state
        g_ours = 0;
        g_onednn = 0;
        const auto second = model.run(in, run);
        const auto third = model.run(in, run);
        const long ours = g_ours, onednn = g_onednn;
        MESSAGE(
            fmt::format("optimize {}, {} threads, batch {}: {} allocations by oneDNN inside "
                        "execute over 2 runs, {} by the kernels",
                        optimize, threads, batch, onednn, ours));
        CHECK(ours == 0);
        // The counter itself works: oneDNN's per-call argument maps are seen.
        CHECK(onednn > 0);
        fg::test::check_close(third.at("probs"), fg::test::to_doubles(first.at("probs")), 0, 0);
      }
    }
  }
}

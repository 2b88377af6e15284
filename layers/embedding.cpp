// keras.layers.Embedding: integer ids [B, T, ...] -> [B, T, ..., output_dim] rows of the
// `embeddings` table. oneDNN 2.6 has no gather primitive, so this is plain C++ with OpenMP.
// Out-of-range ids are an error (never clamped). Training: the forward is the same gather from
// the live table (src 1), the backward a scatter-add of d output rows into a dense d embeddings
// (every row written, zero rows included). See docs/ops/recurrent_embedding.md.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>

#include "framework/registry.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"

namespace fg::layers {
namespace {

// The gather. The table is a constant (inference) or, when `table` is a zero memory, the
// kernel's src 1 (the live parameter of a training forward).
class EmbeddingKernel final : public Kernel {
 public:
  EmbeddingKernel(Dims sample_dims, int64_t rows, int64_t steps, int64_t input_dim,
                  int64_t output_dim, bool mask_zero, dnnl::memory table, std::string node,
                  std::string op, SourceLoc loc)
      : sample_dims_(std::move(sample_dims)),
        rows_(rows),
        steps_(steps),
        input_dim_(input_dim),
        output_dim_(output_dim),
        mask_zero_(mask_zero),
        table_(std::move(table)),
        node_(std::move(node)),
        op_(std::move(op)),
        loc_(std::move(loc)) {}

  void execute(ExecContext& ctx) const override {
    ctx.stream.wait();
    const int32_t* ids = static_cast<const int32_t*>(ctx.srcs[0].get_data_handle());
    float* dst = static_cast<float*>(ctx.dsts[0].get_data_handle());
    const float* table = static_cast<const float*>(table_ ? table_.get_data_handle()
                                                          : ctx.srcs[1].get_data_handle());
    const int64_t count = rows_ * steps_;
    check_ids(ids, count);
    const size_t row_bytes = static_cast<size_t>(output_dim_) * sizeof(float);
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (count > 64)
    for (int64_t n = 0; n < count; ++n)
      std::memcpy(dst + n * output_dim_, table + static_cast<int64_t>(ids[n]) * output_dim_,
                  row_bytes);
    if (mask_zero_ && !ctx.dst_masks.empty() && ctx.dst_masks[0] != nullptr) {
      uint8_t* mask = ctx.dst_masks[0];
      for (int64_t n = 0; n < count; ++n) mask[n] = ids[n] != 0 ? 1 : 0;
    }
  }

  // Validates every id serially, outside any parallel region, so that the error names the first
  // bad id and nothing is thrown from inside OpenMP.
  void check_ids(const int32_t* ids, int64_t count) const {
    for (int64_t n = 0; n < count; ++n) {
      const int32_t id = ids[n];
      if (id < 0 || id >= input_dim_) {
        Error e(
            fmt::format("index {} at batch row {}, position {} is out of range for input_dim {} "
                        "(valid ids are 0 to {})",
                        id, n / steps_, position(n % steps_), input_dim_, input_dim_ - 1));
        e.at(loc_).node(node_, op_);
        e.hint(id < 0 ? "token ids must be non-negative"
                      : "the vocabulary is larger than input_dim: raise input_dim or re-tokenize "
                        "the input");
        throw e;
      }
    }
  }

 private:
  // The position within a sample: "t" for [B, T] ids, "(i, j)" for higher ranks.
  std::string position(int64_t flat) const {
    if (sample_dims_.size() == 1) return std::to_string(flat);
    std::vector<int64_t> index(sample_dims_.size());
    for (size_t k = sample_dims_.size(); k-- > 0;) {
      index[k] = flat % sample_dims_[k];
      flat /= sample_dims_[k];
    }
    return fmt::format("({})", fmt::join(index, ", "));
  }

  Dims sample_dims_;
  int64_t rows_, steps_, input_dim_, output_dim_;
  bool mask_zero_;
  dnnl::memory table_;
  std::string node_, op_;
  SourceLoc loc_;
};

// The training backward: d embeddings = 0, then d embeddings[ids[n]] += d output[n] for every
// position n (a dense gradient of the whole table, as Keras 3 on TensorFlow). Threads split the
// columns, so no two write the same float; positions are summed in order (deterministic).
// srcs: ids, embeddings, output, d output (training_kernel.hpp); dsts: d ids (never written:
// ids are integers), d embeddings.
class EmbeddingBackwardKernel final : public Kernel {
 public:
  EmbeddingBackwardKernel(int64_t count, int64_t input_dim, int64_t output_dim, BackwardArgs args)
      : count_(count), input_dim_(input_dim), output_dim_(output_dim), args_(args) {}

  void execute(ExecContext& ctx) const override {
    ctx.stream.wait();
    const int32_t* ids = static_cast<const int32_t*>(ctx.srcs[args_.input(0)].get_data_handle());
    const float* dy = static_cast<const float*>(ctx.srcs[args_.diff_output(0)].get_data_handle());
    float* dtable = static_cast<float*>(ctx.dsts[args_.diff_weight(0)].get_data_handle());
    constexpr int64_t kBlock = 16;  // columns per task
    const int64_t blocks = (output_dim_ + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(ctx.threads) schedule(static) if (blocks > 1)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t c0 = blk * kBlock, c1 = std::min(output_dim_, c0 + kBlock);
      for (int64_t r = 0; r < input_dim_; ++r)
        std::fill(dtable + r * output_dim_ + c0, dtable + r * output_dim_ + c1, 0.f);
      for (int64_t n = 0; n < count_; ++n) {
        // The forward validated the ids of this batch; an id out of range is never read.
        const int64_t id = ids[n];
        if (id < 0 || id >= input_dim_) continue;
        float* row = dtable + id * output_dim_;
        const float* g = dy + n * output_dim_;
        for (int64_t c = c0; c < c1; ++c) row[c] += g[c];
      }
    }
  }

 private:
  int64_t count_, input_dim_, output_dim_;
  BackwardArgs args_;
};

class Embedding final : public Op {
 public:
  void parse(AttrReader& attrs) override {
    // Read every key before validating: the compiler reports unread keys of a failed parse as
    // misspellings.
    input_dim_ = attrs.get_int("input_dim");
    output_dim_ = attrs.get_int("output_dim");
    mask_zero_ = attrs.get_bool("mask_zero", false);
    input_length_ =
        attrs.get_int("input_length", 0);  // Keras 2: optional, checked against the input
    for (const char* key : {"input_dim", "output_dim"}) {
      const int64_t v = std::string(key) == "input_dim" ? input_dim_ : output_dim_;
      if (v < 1)
        throw attrs.error(key,
                          fmt::format("attribute '{}' must be a positive integer, got {}", key, v));
    }
    if (attrs.has("input_length") && input_length_ < 1)
      throw attrs.error("input_length",
                        fmt::format("attribute 'input_length' must be a positive integer, got {}",
                                    input_length_));
  }

  int64_t index_range(size_t input) const override { return input == 0 ? input_dim_ : 0; }

  std::vector<TensorType> infer(const InferContext& ctx) const override {
    ctx.expect_inputs(1);
    const TensorType& in = ctx.input(0);
    if (in.dtype != DType::i32) {
      Error e = ctx.input_error(
          0, fmt::format("embedding takes integer token ids (int32), got {}", format_type(in)));
      e.hint(
          "declare the graph input with dtype: int32 (embedding looks rows up by id; it does not "
          "accept float features)");
      throw e;
    }
    ctx.expect_rank_at_least(0, 2);
    if (input_length_ > 0 && in.shape[1] != kDynamic && in.shape[1] != input_length_)
      throw ctx.attr_error("input_length",
                           fmt::format("input_length is {} but the ids have {} steps (shape {})",
                                       input_length_, in.shape[1], format_shape(in.shape)));
    if (mask_zero_ && in.rank() != 2)
      throw ctx.attr_error("mask_zero",
                           fmt::format("mask_zero needs [batch, steps] ids (a mask is one flag "
                                       "per step), got {}",
                                       format_shape(in.shape)));
    TensorType out;
    out.dtype = DType::f32;
    out.shape = in.shape;
    out.shape.push_back(output_dim_);
    out.masked = mask_zero_;
    return {out};
  }

  std::vector<WeightSpec> weights(const InferContext&) const override {
    return {{"embeddings", {input_dim_, output_dim_}, Init::uniform_embedding}};
  }
  double flops_per_sample(const InferContext&, const std::vector<TensorType>&) const override {
    return 0.0;
  }
  bool produces_mask() const override { return mask_zero_; }

  bool has_gradient() const override { return true; }

  // Training: the forward gathers from the live table (src 1), mask_zero writes the output mask
  // as in inference; the backward scatter-adds (EmbeddingBackwardKernel). Nothing is saved. The
  // ids get no gradient (they are integers).
  void compile_training(const TrainingKernelContext& ctx, TrainingBuild& build) const override {
    const Dims& in = ctx.inputs.at(0).shape;
    int64_t steps = 1;
    for (size_t i = 1; i < in.size(); ++i) steps *= in[i];
    build = start_training_build(ctx, {});
    build.forward.kernel = std::make_unique<EmbeddingKernel>(
        Dims(in.begin() + 1, in.end()), in[0], steps, input_dim_, output_dim_, mask_zero_,
        dnnl::memory(), ctx.node.name, ctx.node.op, ctx.node.loc);
    if (ctx.frozen)  // nothing to write: no weight gradient, no input gradient
      build.backward.kernel = std::make_unique<PrimitiveSequenceKernel>(PrimitiveSequence{});
    else
      build.backward.kernel = std::make_unique<EmbeddingBackwardKernel>(
          in[0] * steps, input_dim_, output_dim_, backward_args(ctx, 0));
  }

  KernelBuild compile(const KernelContext& ctx) const override {
    KernelBuild build = ctx.start_build();
    const Dims& in = ctx.inputs.at(0).shape;
    if (ctx.input_descs.at(0) != onednn::plain_desc(ctx.inputs.at(0)))
      throw ctx.error("internal: embedding expects a plain (row-major) input layout");
    int64_t steps = 1;
    for (size_t i = 1; i < in.size(); ++i) steps *= in[i];
    const Tensor& w = ctx.weight("embeddings");
    if (w.shape() != Dims{input_dim_, output_dim_})
      throw ctx.error(fmt::format("weight '{}.embeddings' has shape {}, expected {}", ctx.node.name,
                                  format_shape(w.shape()),
                                  format_shape({input_dim_, output_dim_})));
    const auto desc = onednn::plain_desc(Dims{input_dim_, output_dim_});
    dnnl::memory table = ctx.weight_memory("embeddings", desc, desc);
    build.kernel = std::make_unique<EmbeddingKernel>(Dims(in.begin() + 1, in.end()), in[0], steps,
                                                     input_dim_, output_dim_, mask_zero_, table,
                                                     ctx.node.name, ctx.node.op, ctx.node.loc);
    return build;
  }

 private:
  int64_t input_dim_ = 0, output_dim_ = 0;
  bool mask_zero_ = false;
  int64_t input_length_ = 0;  // 0 = not given
};

}  // namespace

OpInfo embedding_op() {
  return {"embedding", [] { return std::make_unique<Embedding>(); },
          "lookup of int32 token ids in an [input_dim, output_dim] table, Keras Embedding"};
}

}  // namespace fg::layers

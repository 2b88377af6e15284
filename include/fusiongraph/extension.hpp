// What a custom op needs: the Op interface and its contexts, the registry, kernels and the
// oneDNN adapter. A custom op is written exactly like a built-in one (see docs/extending.md):
//
//   class MyOp final : public fg::Op { parse / infer / weights / flops_per_sample / compile };
//   fg::OpInfo my_op() { return {"my_op", [] { return std::make_unique<MyOp>(); }, "..."}; }
//
//   fg::OpRegistry ops = fg::builtin_ops();
//   ops.add(my_op());
//   fg::CompileOptions options;
//   options.ops = &ops;
//   fg::Session session = fg::load("graph.yaml", options);
//
// Contents:
//   framework/op.hpp         Op, AttrReader (attributes, errors at the YAML value), InferContext
//                            (input types, input_error / attr_error / expect_*), WeightSpec, Init
//   framework/registry.hpp   OpInfo, OpRegistry (add, find, names); fg::builtin_ops() is in
//                            fusiongraph.hpp
//   framework/shape.hpp      TensorType, Dims, kDynamic, format_shape, dim_mul / dim_add
//   kernels/kernel.hpp       KernelContext (what compile reads: types, stored layouts, weights,
//                            weight_memory, constant), KernelBuild (what it returns: kernel,
//                            layouts, add_temp, add_scratchpad), PrimitiveSequence / CallArg /
//                            PrimitiveSequenceKernel, Kernel (bind, execute), ExecContext
//   kernels/onednn/onednn.hpp  the oneDNN 2.x adapter: plain_desc, make_attr, impl_name, and
//                            primitive-descriptor helpers (inner product, matmul, conv, pooling,
//                            binary, concat, eltwise, softmax, normalization, rnn)
#pragma once

#include "framework/op.hpp"
#include "framework/registry.hpp"
#include "framework/shape.hpp"
#include "fusiongraph.hpp"
#include "kernels/kernel.hpp"
#include "kernels/onednn/onednn.hpp"
#include "kernels/training_kernel.hpp"
#include "training.hpp"
